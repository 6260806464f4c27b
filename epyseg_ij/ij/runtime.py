"""Start ImageJ inside this Python process, with the EPySeg plug-in installed and the service registered.

Two ways, both speaking the ImageJ 1.x API:

- **embedded (default, offline)**: a JPype JVM with ImageJ 1.x jars: Debian's ``libij-java`` ``ij.jar`` and
  ``jython.jar``, or the jars of a user's ImageJ 1.x or Fiji folder; headless or with a GUI (needs ``DISPLAY``);
- **pyimagej**: for a Fiji.app folder or a Maven endpoint when pyimagej is installed (``launcher="pyimagej"``, or
  ``"auto"`` with a Fiji.app), with the offline work-arounds: use the system Java (no JRE download) and drop the
  Maven endpoint that imglyb registers.

A JVM can be started once per process: ``start`` returns the running ImageJ when called again with compatible
settings and raises otherwise.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EpysegError

log = logging.getLogger(__name__)

DEBIAN_IJ = Path("/usr/share/java/ij.jar")
DEBIAN_JYTHON = Path("/usr/share/java/jython.jar")
DEBIAN_JYTHON_HOME = Path("/usr/share/jython")
JAR_NAME = "EPySeg_Bridge.jar"  # the underscore makes ImageJ read its plugins.config
JAVA_DIR = Path(__file__).resolve().parents[1] / "java"
REPO_JAR = JAVA_DIR.parents[1] / "build" / JAR_NAME
JVM_OPTIONS = ("-Xss16m", "-Dpython.cachedir.skip=true", "-Dfile.encoding=UTF-8")
LAUNCHERS = ("auto", "jpype", "pyimagej")


@dataclass(frozen=True)
class ImageJ:
    """The ImageJ running in this process."""

    headless: bool
    plugins_dir: Path
    version: str
    launcher: str  # "jpype" or "pyimagej"
    app_dir: Path | None = None  # the user's ImageJ/Fiji folder, None for Debian's jars
    gateway: Any = None  # the pyimagej gateway, when started through pyimagej


_current: ImageJ | None = None
_lock = threading.Lock()


def current() -> ImageJ | None:
    """The ImageJ started by ``start`` in this process, or None."""
    return _current


def start(
    app_dir: str | os.PathLike | None = None,
    *,
    headless: bool = True,
    launcher: str = "auto",
    max_memory: str | None = None,
    jvm_options: tuple[str, ...] = (),
) -> ImageJ:
    """Start ImageJ in this process (once), install the EPySeg plug-in and register the service.

    Parameters
    ----------
    app_dir : path or str, optional
        An ImageJ 1.x folder (``ij.jar`` + ``plugins/``), a Fiji.app folder, or (pyimagej only) a Maven endpoint
        such as ``"sc.fiji:fiji:2.16.0"``. Default: Debian's ImageJ 1.x jars, with a private plugins folder in the
        epyseg-ij cache.
    headless : bool
        No display: images and ROIs stay in memory (batch mode), the ROI Manager is replaced by overlays and .zip
        files. With ``False`` the full ImageJ GUI API works (menus, dialogs, ROI Manager); needs ``DISPLAY``.
    launcher : "auto", "jpype" or "pyimagej"
        "auto" uses pyimagej for a Fiji.app folder or an endpoint when pyimagej is installed, JPype otherwise.
    max_memory : str, optional
        Java heap limit, e.g. ``"8g"``.
    jvm_options : tuple of str
        More JVM options.

    Returns
    -------
    ImageJ

    Examples
    --------
    >>> from epyseg_ij import ij
    >>> imagej = ij.start()  # doctest: +SKIP
    >>> imagej.version  # doctest: +SKIP
    '1.53t99'
    """
    global _current
    if launcher not in LAUNCHERS:
        raise EpysegError(f"unknown launcher {launcher!r}: use one of {', '.join(LAUNCHERS)}")
    with _lock:
        if _current is not None:
            wanted = None if app_dir is None else Path(app_dir).expanduser().resolve()
            if _current.headless != headless or (wanted is not None and wanted != _current.app_dir):
                mode = "headless" if _current.headless else "with a GUI"
                where = _current.app_dir or "Debian's ImageJ"
                raise EpysegError(f"ImageJ ({where}) already runs {mode} here; a JVM starts once per process")
            return _current
        import jpype

        if jpype.isJVMStarted():
            raise EpysegError("a JVM already runs in this process without EPySeg's ImageJ; start ImageJ first")
        if not headless and not os.environ.get("DISPLAY"):
            raise EpysegError("no display for the ImageJ GUI: set DISPLAY, or run under xvfb-run, or use headless")
        _warm_numpy_linalg()
        options = [f"-Djava.awt.headless={'true' if headless else 'false'}", *JVM_OPTIONS, *jvm_options]
        if max_memory:
            options.append(f"-Xmx{max_memory}")
        kind = _app_kind(app_dir)
        fiji_like = kind in ("fiji", "endpoint")
        use_pyimagej = launcher == "pyimagej" or (launcher == "auto" and fiji_like and _has_pyimagej())
        if kind == "endpoint" and not use_pyimagej:
            raise EpysegError(f"{app_dir!r} is not a folder; Maven endpoints need pyimagej (pip install pyimagej)")
        if use_pyimagej:
            _current = _start_pyimagej(app_dir, kind, headless, options)
        else:
            _current = _start_jpype(app_dir, kind, headless, options)
        from . import commands, service  # noqa: F401 (importing commands registers them with the service)

        service.install(_current)
        if headless:
            bridge_class("ThreadResults").install()  # each macro thread reads its own Results table
        if not headless:
            atexit.register(close_windows)  # runs before JPype's exit hook, which waits for the AWT threads
        log.info("ImageJ %s started (%s, %s)", _current.version, _current.launcher, "headless" if headless else "GUI")
        return _current


def bridge_class(name: str):
    """A class of the EPySeg plug-in (``epyseg.bridge.NAME``), loaded as ImageJ loads it for macros."""
    import jpype
    from ij import IJ

    return jpype.JClass(f"epyseg.bridge.{name}", loader=IJ.getClassLoader())


def close_windows() -> None:
    """Dispose of every ImageJ/AWT window (no save prompts), so that the JVM, and Python, can exit."""
    import jpype

    if not jpype.isJVMStarted():
        return
    from java.awt import Window

    for window in Window.getWindows():
        window.dispose()


# ------------------------------------------------------------------------------------------------------ JPype


def _start_jpype(app_dir, kind: str, headless: bool, options: list[str]) -> ImageJ:
    import jpype
    import jpype.imports  # noqa: F401  (enables `from ij import IJ`)

    if kind == "debian":
        for jar in (DEBIAN_IJ, DEBIAN_JYTHON):
            if not jar.is_file():
                raise EpysegError(f"{jar} is missing: install Debian's libij-java and jython (make system-deps)")
        plugins = _private_plugins_dir()
        classpath = [DEBIAN_IJ, DEBIAN_JYTHON]
        options.append(f"-Dpython.home={DEBIAN_JYTHON_HOME}")
        app = None
    else:
        app = Path(app_dir).expanduser().resolve()
        plugins = app / "plugins"
        classpath = _app_classpath(app, kind)
    jar = install_plugin(plugins)
    classpath.append(jar)  # also on the class path, so Python and Jython can import epyseg.bridge directly
    options.append(f"-Dplugins.dir={plugins}")
    # interrupt=False: Ctrl-C (SIGINT) stays a KeyboardInterrupt in Python instead of ending the whole process
    jpype.startJVM(*options, classpath=[str(p) for p in classpath], convertStrings=False, interrupt=False)
    from ij import IJ

    if headless:
        register_commands(jar)
    return ImageJ(headless, plugins, str(IJ.getFullVersion()), "jpype", app)


def _app_classpath(app: Path, kind: str) -> list[Path]:
    """ImageJ 1.x folder: its ij.jar and a Jython jar; Fiji.app: every jar of jars/ and plugins/ (as pyimagej does)."""
    if kind == "imagej1":
        jython = sorted(app.glob("plugins/**/jython*.jar")) + sorted(app.glob("jars/**/jython*.jar"))
        return [app / "ij.jar", jython[0] if jython else DEBIAN_JYTHON]
    jars = sorted((app / "jars").rglob("*.jar")) + sorted((app / "plugins").rglob("*.jar"))
    return [j for j in jars if j.name != JAR_NAME]


def _app_kind(app_dir) -> str:
    """ "debian", "imagej1" (a folder with ij.jar), "fiji" (jars/ij-1.x.jar) or "endpoint"."""
    if app_dir is None:
        return "debian"
    path = Path(app_dir).expanduser()
    if not path.exists():
        if ":" in str(app_dir) and not str(app_dir).startswith(("/", ".")):
            return "endpoint"
        raise EpysegError(f"ImageJ/Fiji folder not found: {path}")
    if (path / "ij.jar").is_file():
        return "imagej1"
    if any((path / "jars").glob("ij-1*.jar")) or any((path / "jars").glob("ij.jar")):
        return "fiji"
    raise EpysegError(f"{path} is not an ImageJ or Fiji folder: no ij.jar (ImageJ 1.x) nor jars/ij-1.*.jar (Fiji)")


def _private_plugins_dir() -> Path:
    from ..models import home

    plugins = home() / "imagej" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    return plugins


def _warm_numpy_linalg() -> None:
    """Load OpenBLAS before the JVM shrinks thread stacks (JPype issue 808)."""
    import numpy as np

    np.linalg.inv(np.eye(2))


# --------------------------------------------------------------------------------------------------- pyimagej


def _has_pyimagej() -> bool:
    try:
        import imagej  # noqa: F401
    except ImportError:
        return False
    return True


def _start_pyimagej(app_dir, kind: str, headless: bool, options: list[str]) -> ImageJ:
    """Fiji through pyimagej, offline: system Java, no Maven endpoint from imglyb, the plug-in pre-installed."""
    try:
        import imagej
        import scyjava
    except ImportError:
        raise EpysegError("pyimagej is not installed: pip install 'epyseg-ij[fiji]', or use launcher='jpype'") from None
    plugins = None
    if kind == "fiji":
        app_dir = Path(app_dir).expanduser().resolve()
        plugins = app_dir / "plugins"
        install_plugin(plugins)  # before start-up, so Fiji's menus and class path include it
    scyjava.config.set_java_constraints(fetch="auto")  # "always" (the default) downloads a JRE; "never" hits a bug
    if kind == "fiji":  # offline: no Maven
        scyjava.config.endpoints.clear()  # imglyb adds net.imglib2:imglib2-imglyb, which needs Maven Central
        if not any(app_dir.rglob("imglib2-imglyb*.jar")):
            _drop_imglyb_callbacks(scyjava)
    for option in options:
        scyjava.config.add_option(option)
    scyjava.config.add_kwargs(interrupt=False)  # Ctrl-C stays a KeyboardInterrupt (scyjava's default ends the process)
    try:
        gateway = imagej.init(str(app_dir), mode="headless" if headless else "interactive")
    except Exception as error:  # pyimagej reports missing ImageJ2 as a TypeError, network problems variously
        raise EpysegError(
            f"pyimagej could not start {app_dir} ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "it needs a Fiji.app with ImageJ2. Use launcher='jpype' (in a new Python process) for plain ImageJ 1.x"
        ) from None
    from ij import IJ, Menus

    if plugins is None:
        plugins = Path(str(Menus.getPlugInsPath() or _private_plugins_dir()))
        install_plugin(plugins)
    if headless:
        register_commands(plugins / JAR_NAME)
    return ImageJ(headless, plugins, str(IJ.getFullVersion()), "pyimagej", app_dir, gateway)


def _drop_imglyb_callbacks(scyjava) -> None:
    """imglyb's JVM start-up hooks load its own Java classes (a Maven artifact that Fiji does not ship) and fail.

    EPySeg never uses imglyb's conversions (it speaks ImageJ 1.x), so the hooks are dropped. This touches scyjava's
    private list of hooks (scyjava 1.12); if that changes, pyimagej reports the missing classes instead.
    """
    callbacks = getattr(getattr(scyjava, "_jvm", None), "_startup_callbacks", None)
    if isinstance(callbacks, list):
        callbacks[:] = [f for f in callbacks if not str(getattr(f, "__module__", "")).startswith("imglyb")]


# ------------------------------------------------------------------------------------------------- the plug-in


def plugin_jar() -> Path:
    """The built EPySeg plug-in jar: ``build/EPySeg_Bridge.jar`` if up to date (make), else built into the cache."""
    sources = sorted(p for p in JAVA_DIR.rglob("*") if p.is_file() and p.suffix in (".java", ".config", ".sh"))
    if REPO_JAR.is_file() and REPO_JAR.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return REPO_JAR
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.relative_to(JAVA_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    from ..models import home

    jar = home() / "plugin" / digest.hexdigest()[:16] / JAR_NAME
    if not jar.is_file():
        build_plugin(jar)
    return jar


def build_plugin(jar: Path, imagej_dir: Path | None = None) -> Path:
    """Compile the plug-in with the JDK (``javac --release 8``, no Maven) into ``jar``."""
    if shutil.which("javac") is None or shutil.which("jar") is None:
        raise EpysegError("building the EPySeg ImageJ plug-in needs a JDK (javac): install default-jdk-headless")
    jar.parent.mkdir(parents=True, exist_ok=True)
    command = ["sh", str(JAVA_DIR / "build.sh"), str(jar), *([str(imagej_dir)] if imagej_dir else [])]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise EpysegError(f"building the EPySeg ImageJ plug-in failed: {done.stderr.strip()[-500:]}")
    log.info("built %s", jar)
    return jar


def install_plugin(plugins_dir: Path) -> Path:
    """Copy the plug-in jar into an ImageJ/Fiji plugins folder (atomically; only when it changed)."""
    source = plugin_jar()
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
    """Make the plug-in's commands runnable by ``run("EPySeg ...")`` headless, where ImageJ builds no menus."""
    from ij import Menus
    from java.util import Hashtable

    table = Menus.class_.getDeclaredField("pluginsTable")
    table.setAccessible(True)
    if table.get(None) is None:
        table.set(None, Hashtable())
    commands = Menus.getCommands()
    for name, target in plugin_commands(jar).items():
        commands.put(name, target)
