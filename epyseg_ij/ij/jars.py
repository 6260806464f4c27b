"""What the embedded ImageJ is made of: ImageJ 1.x's ``ij.jar``, an optional Jython, and a Java (JDK).

- ``ij.jar``: ``$EPYSEG_IJ_JAR`` if set, else Debian's ``libij-java`` (``/usr/share/java/ij.jar``), else a pinned
  ImageJ release downloaded once into the epyseg-ij cache with pooch and checked against its SHA-256 (macOS,
  Windows, other Linux). Offline, one error says where to put the file.
- Jython (for ``eval("python")`` and Jython scripts in the embedded ImageJ): Debian's ``jython`` package, else none.
- Java: the JDK named by ``java_home`` (or ``$JAVA_HOME``), else the system's (what JPype finds; ``javac`` on the
  ``PATH`` builds the plug-in).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import EpysegError, first_line

DEBIAN_IJ = Path("/usr/share/java/ij.jar")
DEBIAN_JYTHON = Path("/usr/share/java/jython.jar")
DEBIAN_JYTHON_HOME = Path("/usr/share/jython")
IJ_JAR_VARIABLE = "EPYSEG_IJ_JAR"  # an ij.jar the user names (e.g. Fiji.app/jars/ij-1.54p.jar)
# Where libjvm lives inside a JDK or JRE (Linux and macOS, Windows, Java 8's jre/ layout).
_JVM_LIBRARIES = (
    "lib/server/libjvm.so",
    "lib/server/libjvm.dylib",
    "bin/server/jvm.dll",
    "jre/lib/amd64/server/libjvm.so",
)


@dataclass(frozen=True)
class Release:
    """A published ImageJ 1.x jar: where to download it and how to check it."""

    version: str
    url: str
    sha256: str

    @property
    def file_name(self) -> str:
        return f"ij-{self.version}.jar"


# Maven Central's copy of the ImageJ 1.54p release; the SHA-256 is the published jar's (not fetched on the build
# machine, which has no internet: see the README).
IJ_RELEASE = Release(
    "1.54p",
    "https://repo1.maven.org/maven2/net/imagej/ij/1.54p/ij-1.54p.jar",
    "2e1a09961dfb41cee66ddc821b2577a41a072566ce45a49bae69267099741e20",
)


def imagej_jar() -> Path:
    """ImageJ 1.x for the embedded ImageJ: ``$EPYSEG_IJ_JAR``, Debian's ``ij.jar``, or the pinned release (cached)."""
    named = os.environ.get(IJ_JAR_VARIABLE)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise EpysegError(f"{IJ_JAR_VARIABLE}={named} is not a file: name an ImageJ 1.x ij.jar")
        return path
    if DEBIAN_IJ.is_file():
        return DEBIAN_IJ
    return download(IJ_RELEASE, cache_folder())


def cache_folder() -> Path:
    """Where the downloaded ``ij.jar`` lives: ``<epyseg-ij cache>/imagej/jars``."""
    from ..models import home

    return home() / "imagej" / "jars"


def download(release: Release, folder: Path) -> Path:
    """The release's jar in ``folder``, downloaded once and checked; one clear error if that fails."""
    import pooch

    target = folder / release.file_name
    try:
        return Path(
            pooch.retrieve(
                release.url,
                known_hash=f"sha256:{release.sha256}",
                fname=release.file_name,
                path=folder,
                downloader=pooch.HTTPDownloader(progressbar=True, timeout=30),
            )
        )
    except Exception as error:  # network, HTTP status, checksum, disk: all say the same thing to the user
        raise EpysegError(
            f"could not download ImageJ {release.version} from {release.url} ({first_line(error)}); download it by "
            f"hand and put it at {target} (sha256 {release.sha256}), or set {IJ_JAR_VARIABLE} to an ij.jar you have"
        ) from None


def jython() -> tuple[Path, Path] | None:
    """Debian's Jython (jar, home), or None where it is not installed."""
    if DEBIAN_JYTHON.is_file() and DEBIAN_JYTHON_HOME.is_dir():
        return DEBIAN_JYTHON, DEBIAN_JYTHON_HOME
    return None


def java_home(given: str | os.PathLike | None = None) -> Path | None:
    """The JDK to use: ``given``, else ``$JAVA_HOME``, else None (the system's Java)."""
    value = given if given is not None else os.environ.get("JAVA_HOME")
    if not value:
        return None
    home = Path(value).expanduser()
    if not home.is_dir():
        raise EpysegError(f"Java home {home} is not a folder: name a JDK folder (with bin/java), or unset JAVA_HOME")
    return home


def jvm_library(home: Path | None) -> str | None:
    """The JVM library inside a Java home, for JPype; None means JPype's default."""
    if home is None:
        return None
    for relative in _JVM_LIBRARIES:
        if (home / relative).is_file():
            return str(home / relative)
    raise EpysegError(f"{home} holds no JVM library (lib/server/libjvm.*): name a JDK or JRE folder")


def jdk_tool(name: str, home: Path | None) -> str:
    """A JDK program (``javac``, ``jar``) from ``home``, else from the ``PATH``."""
    candidates = [home / "bin" / name, home / "bin" / f"{name}.exe"] if home is not None else []
    found = next((str(c) for c in candidates if c.is_file()), None) or shutil.which(name)
    if found is None:
        where = f"in {home}/bin" if home is not None else "on the PATH"
        raise EpysegError(f"building the EPySeg ImageJ plug-in needs a JDK: no {name} {where} (install a JDK 11+)")
    return found
