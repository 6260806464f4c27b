"""The EPySeg ImageJ plug-in jar (``EPySeg_Bridge.jar``): built from ``epyseg_ij/java`` with the JDK, installed into a
plugins folder, and its commands registered where ImageJ builds no menus (headless)."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import zipfile
from pathlib import Path

from ..errors import EpysegError
from . import jars

log = logging.getLogger(__name__)

JAR_NAME = "EPySeg_Bridge.jar"  # the underscore makes ImageJ read its plugins.config
JAVA_DIR = Path(__file__).resolve().parents[1] / "java"
REPO_JAR = JAVA_DIR.parents[1] / "build" / JAR_NAME
_SOURCES = (".java", ".config", ".sh", ".toml")


def plugin_jar(java_home: Path | None = None) -> Path:
    """The built plug-in jar: ``build/EPySeg_Bridge.jar`` if up to date (make), else built once into the cache."""
    sources = sorted(p for p in JAVA_DIR.rglob("*") if p.is_file() and p.suffix in _SOURCES)
    if REPO_JAR.is_file() and REPO_JAR.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return REPO_JAR
    jython = jars.jython()
    digest = hashlib.sha256(b"jython" if jython else b"")
    for path in sources:
        digest.update(path.relative_to(JAVA_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    from ..models import home

    jar = home() / "plugin" / digest.hexdigest()[:16] / JAR_NAME
    if not jar.is_file():
        build_plugin(jar, jars.imagej_jar(), jython[0] if jython else None, java_home)
    return jar


def build_plugin(jar: Path, imagej: Path, jython: Path | None = None, java_home: Path | None = None) -> Path:
    """Compile the plug-in (``javac --release 8``, no Maven) against an ``ij.jar`` (and a Jython jar) into ``jar``."""
    javac = jars.jdk_tool("javac", java_home)
    jar.parent.mkdir(parents=True, exist_ok=True)
    command = ["sh", str(JAVA_DIR / "build.sh"), str(jar), str(imagej), str(jython or "")]
    env = {**os.environ, "JAVA_HOME": str(Path(javac).resolve().parents[1])}  # build.sh runs $JAVA_HOME/bin/javac
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise EpysegError(f"building the EPySeg ImageJ plug-in failed: {done.stderr.strip()[-500:]}")
    log.info("built %s", jar)
    return jar


def install_plugin(plugins_dir: Path, java_home: Path | None = None) -> Path:
    """Copy the plug-in jar into an ImageJ/Fiji plugins folder (atomically; only when it changed)."""
    source = plugin_jar(java_home)
    target = Path(plugins_dir) / JAR_NAME
    if target.is_file() and target.read_bytes() == source.read_bytes():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{JAR_NAME}.", dir=target.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(source.read_bytes())
        os.replace(tmp, target)
    except OSError as error:
        raise EpysegError(f"cannot install the EPySeg plug-in into {plugins_dir}: {error.strerror or error}") from None
    log.info("installed %s", target)
    return target


def plugin_commands(jar: Path) -> dict[str, str]:
    """Command name → plug-in class with argument, from the jar's plugins.config."""
    with zipfile.ZipFile(jar) as z:
        text = z.read("plugins.config").decode()
    commands = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        _, name, target = (part.strip() for part in line.split(",", 2))
        commands[name.strip('"')] = target
    return commands


def register_commands(jar: Path) -> None:
    """Make the plug-in's commands runnable by ``run("EPySeg ...")`` where ImageJ built no menus (headless, or the
    jar came after ImageJ started); commands already known are left as they are."""
    from ij import Menus
    from java.util import Hashtable

    table = Menus.class_.getDeclaredField("pluginsTable")
    table.setAccessible(True)
    if table.get(None) is None:
        table.set(None, Hashtable())
    commands = Menus.getCommands()
    for name, target in plugin_commands(jar).items():
        if not commands.containsKey(name):
            commands.put(name, target)
