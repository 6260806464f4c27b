"""Get the ImageJ of this Python process, with the EPySeg plug-in installed and the service registered.

Three ways to a JVM, all speaking the ImageJ 1.x API, with one dispatcher and one set of macro commands:

- **embedded (default, offline)**: a JPype JVM with ImageJ 1.x (``jars``: Debian's ``ij.jar`` and ``jython.jar``,
  or a pinned ``ij.jar`` downloaded once), or the jars of a user's ImageJ 1.x or Fiji folder; headless or with a GUI;
- **pyimagej**: for a Fiji.app folder or a Maven endpoint when pyimagej is installed (``launcher="pyimagej"``, or
  ``"auto"`` with a Fiji.app), with the offline work-arounds: use the system Java (no JRE download) and drop the
  Maven endpoint that imglyb registers;
- **attach**: a JVM that someone else started in this process with ImageJ 1.x on its class path (Fiji's Python
  mode, a user's ``imagej.init(...)``, scyjava or JPype): ``attach`` registers the service in it, and ``start``
  attaches when it finds a JVM already running.

A JVM starts once per process: ``start`` returns the running ImageJ when called again with compatible settings and
raises otherwise.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EpysegError
from . import jars
from .plugin import JAR_NAME, install_plugin, plugin_jar, register_commands

log = logging.getLogger(__name__)

JVM_OPTIONS = ("-Xss16m", "-Dpython.cachedir.skip=true", "-Dfile.encoding=UTF-8")
LAUNCHERS = ("auto", "jpype", "pyimagej")


@dataclass(frozen=True)
class ImageJ:
    """The ImageJ running in this process."""

    headless: bool
    plugins_dir: Path
    version: str
    launcher: str  # "jpype", "pyimagej", or "attached" (a JVM started by someone else)
    app_dir: Path | None = None  # the user's ImageJ/Fiji folder, None for the embedded ImageJ
    gateway: Any = None  # the pyimagej gateway, when started through pyimagej


_current: ImageJ | None = None
_lock = threading.Lock()


def current() -> ImageJ | None:
    """The ImageJ started by ``start`` (or found by ``attach``) in this process, or None."""
    return _current


def start(
    app_dir: str | os.PathLike | None = None,
    *,
    headless: bool = True,
    launcher: str = "auto",
    max_memory: str | None = None,
    jvm_options: tuple[str, ...] = (),
    java_home: str | os.PathLike | None = None,
) -> ImageJ:
    """Start ImageJ in this process (once), install the EPySeg plug-in and register the service.

    When a JVM already runs in this process (Fiji's Python mode, ``imagej.init``...), attach to it instead (see
    ``attach``); the launch settings then do not apply.

    Parameters
    ----------
    app_dir : path or str, optional
        An ImageJ 1.x folder (``ij.jar`` + ``plugins/``), a Fiji.app folder, or (pyimagej only) a Maven endpoint
        such as ``"sc.fiji:fiji:2.16.0"``. Default: the embedded ImageJ 1.x (Debian's jars, or ImageJ 1.54p
        downloaded once into the epyseg-ij cache), with a private plugins folder in the cache.
    headless : bool
        No display: images and ROIs stay in memory (batch mode), the ROI Manager is replaced by overlays and .zip
        files. With ``False`` the full ImageJ GUI API works (menus, dialogs, ROI Manager); needs ``DISPLAY``.
    launcher : "auto", "jpype" or "pyimagej"
        "auto" uses pyimagej for a Fiji.app folder or an endpoint when pyimagej is installed, JPype otherwise.
    max_memory : str, optional
        Java heap limit, e.g. ``"8g"``.
    jvm_options : tuple of str
        More JVM options.
    java_home : path, optional
        The JDK to run (and to build the plug-in with); default ``$JAVA_HOME``, else the system's Java.

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
                if _current.launcher == "attached" and (headless or not _current.headless):
                    return _current  # someone else's JVM: it is what it is, as long as it can do what is asked
                mode = "headless" if _current.headless else "with a GUI"
                where = _current.app_dir or "the embedded ImageJ"
                raise EpysegError(f"ImageJ ({where}) already runs {mode} here; a JVM starts once per process")
            return _current
        import jpype

        if jpype.isJVMStarted():
            attached = _attach()
            if not headless and attached.headless:
                raise EpysegError("the JVM of this process runs headless: ImageJ's GUI cannot open in it")
            return attached
        if not headless and not os.environ.get("DISPLAY"):
            raise EpysegError("no display for the ImageJ GUI: set DISPLAY, or run under xvfb-run, or use headless")
        java = jars.java_home(java_home)
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
            _current = _start_pyimagej(app_dir, kind, headless, options, java)
        else:
            _current = _start_jpype(app_dir, kind, headless, options, java)
        if not headless:
            atexit.register(close_windows)  # runs before JPype's exit hook, which waits for the AWT threads
        _catch_sigterm()
        return _install_service(_current)


def _catch_sigterm() -> None:
    """Make SIGTERM a ``KeyboardInterrupt`` in the main thread, as Ctrl-C is.

    JPype (``interrupt=False``) forwards SIGINT and SIGTERM from a Java thread to Python. Where Python's handler of
    the signal is still the default, CPython compares handlers without holding the GIL, and the JVM crashes
    (SIGSEGV in ``PyObject_RichCompare``, an hs_err file); a Python handler is taken without that comparison.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt("terminated (SIGTERM)")


def attach() -> ImageJ:
    """Register the EPySeg service in the JVM that someone else started in this process; once.

    Fiji's Python mode, a user's ``imagej.init(...)``, scyjava or JPype: any JVM with ImageJ 1.x on its class path.
    If the plug-in's classes cannot be loaded yet, its jar is installed in ImageJ's plugins folder; its commands are
    registered where ImageJ has no menu entry for them (headless, or the jar came after start-up). Called again, it
    returns the same ImageJ and installs nothing more. A Fiji in Python mode calls it by itself on the first EPySeg
    command (``epyseg.bridge.FijiPython``).

    Returns
    -------
    ImageJ
        ``launcher`` is ``"attached"``.

    Raises
    ------
    EpysegError
        No JVM runs in this process (use ``start``), or it has no ImageJ 1.x.
    """
    with _lock:
        return _current if _current is not None else _attach()


def _attach() -> ImageJ:
    global _current
    import jpype

    if not jpype.isJVMStarted():
        raise EpysegError("no JVM runs in this Python process: start ImageJ with epyseg_ij.ij.start()")
    import jpype.imports  # noqa: F401  (enables `from ij import IJ`)

    try:
        from ij import IJ
    except ImportError:
        raise EpysegError("the JVM running in this process has no ImageJ 1.x (ij.jar) on its class path") from None
    from java.awt import GraphicsEnvironment
    from java.lang import System

    plugins = _plugins_folder()
    jar = plugins / JAR_NAME
    if not _plugin_loadable():
        jar = install_plugin(plugins)
        IJ.resetClassLoader()  # the next class lookup scans the plugins folder again, with the jar in it
    elif not jar.is_file():  # on the class path only: its command list is the packaged one
        jar = plugin_jar()
    register_commands(jar)
    app = System.getProperty("fiji.dir") or System.getProperty("ij.dir")
    headless = bool(GraphicsEnvironment.isHeadless())
    _current = ImageJ(headless, plugins, str(IJ.getFullVersion()), "attached", Path(str(app)) if app else None)
    return _install_service(_current)


def _install_service(imagej: ImageJ) -> ImageJ:
    from . import commands, service  # noqa: F401 (importing commands registers them with the service)

    service.install(imagej)
    if imagej.headless:
        bridge_class("ThreadResults").install()  # each macro thread reads its own Results table
    log.info("ImageJ %s ready (%s, %s)", imagej.version, imagej.launcher, "headless" if imagej.headless else "GUI")
    return imagej


def _plugins_folder() -> Path:
    """ImageJ's plugins folder in a running JVM, found as ImageJ finds it (``plugins.dir``, or its ``plugins/``);
    without ``plugins.dir`` the private folder of the cache, made ImageJ's."""
    from ij import Menus
    from java.lang import System

    path = Menus.getPlugInsPath()
    if path:
        return Path(str(path))
    base = System.getProperty("plugins.dir")
    if base:
        base = Path(str(base))
        return base / "plugins" if (base / "plugins").is_dir() else base
    private = _private_plugins_dir()
    System.setProperty("plugins.dir", str(private.parent))
    return private


def _plugin_loadable() -> bool:
    try:
        bridge_class("PyBridge")
    except Exception:  # java.lang.ClassNotFoundException
        return False
    return True


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


def _start_jpype(app_dir, kind: str, headless: bool, options: list[str], java: Path | None) -> ImageJ:
    import jpype
    import jpype.imports  # noqa: F401  (enables `from ij import IJ`)

    if kind == "embedded":
        plugins = _private_plugins_dir()
        classpath = [jars.imagej_jar()]
        jython = jars.jython()
        if jython is not None:
            classpath.append(jython[0])
            options.append(f"-Dpython.home={jython[1]}")
        app = None
    else:
        app = Path(app_dir).expanduser().resolve()
        plugins = app / "plugins"
        classpath = _app_classpath(app, kind)
    jar = install_plugin(plugins, java)
    classpath.append(jar)  # also on the class path, so Python and Jython can import epyseg.bridge directly
    options.append(f"-Dplugins.dir={plugins}")
    # interrupt=False: Ctrl-C (SIGINT) stays a KeyboardInterrupt in Python instead of ending the whole process
    jpype.startJVM(
        *options, jvmpath=jars.jvm_library(java), classpath=[str(p) for p in classpath], convertStrings=False,
        interrupt=False,
    )  # fmt: skip
    from ij import IJ

    if headless:
        register_commands(jar)
    return ImageJ(headless, plugins, str(IJ.getFullVersion()), "jpype", app)


def _app_classpath(app: Path, kind: str) -> list[Path]:
    """ImageJ 1.x folder: its ij.jar and a Jython jar; Fiji.app: every jar of jars/ and plugins/ (as pyimagej does)."""
    if kind == "imagej1":
        jython = sorted(app.glob("plugins/**/jython*.jar")) + sorted(app.glob("jars/**/jython*.jar"))
        embedded = jars.jython()
        found = jython[0] if jython else embedded[0] if embedded else None
        return [app / "ij.jar", *([found] if found else [])]
    found = sorted((app / "jars").rglob("*.jar")) + sorted((app / "plugins").rglob("*.jar"))
    return [j for j in found if j.name != JAR_NAME]


def _app_kind(app_dir) -> str:
    """ "embedded", "imagej1" (a folder with ij.jar), "fiji" (jars/ij-1.x.jar) or "endpoint"."""
    if app_dir is None:
        return "embedded"
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


def _start_pyimagej(app_dir, kind: str, headless: bool, options: list[str], java: Path | None) -> ImageJ:
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
        install_plugin(plugins, java)  # before start-up, so Fiji's menus and class path include it
    scyjava.config.set_java_constraints(fetch="auto")  # "always" (the default) downloads a JRE; "never" hits a bug
    if kind == "fiji":  # offline: no Maven
        scyjava.config.endpoints.clear()  # imglyb adds net.imglib2:imglib2-imglyb, which needs Maven Central
        if not any(app_dir.rglob("imglib2-imglyb*.jar")):
            _drop_imglyb_callbacks(scyjava)
    for option in options:
        scyjava.config.add_option(option)
    scyjava.config.add_kwargs(interrupt=False)  # Ctrl-C stays a KeyboardInterrupt (scyjava's default ends the process)
    if java is not None:
        scyjava.config.add_kwargs(jvmpath=jars.jvm_library(java))
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
        install_plugin(plugins, java)
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
