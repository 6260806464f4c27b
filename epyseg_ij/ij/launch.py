"""What the command line starts: a macro or Jython script in the embedded ImageJ, or the ImageJ/Fiji GUI with EPySeg.

Macros run on the calling thread through ``epyseg.bridge.MacroRun``: the first error stops the macro (ImageJ's own
or an EPySeg command's) and is reported as one line, ``epyseg-ij: macro error in line N: ...``; ``exit`` is a normal
end. Macro files are read as ImageJ reads them: UTF-8, else Latin-1. ``.py`` files run as Jython scripts
(``epyseg.bridge.ScriptRun``), with the same one-line errors.

``epyseg-ij macro`` without ``--gui`` runs ImageJ on a private, invisible display (``display``, Xvfb) when Xvfb is
installed, so that ImageJ's own commands work as in Fiji's ``--headless``; nobody is at that screen
(``epyseg.bridge.NoPerson``): dialogs take their defaults, and what waits for a person stops the macro.
"""

from __future__ import annotations

import codecs
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import EpysegError, InputError
from . import display, runtime

log = logging.getLogger(__name__)

GRACE_S = 5.0  # s a macro gets to stop after Ctrl-C
MAX_MACRO_BYTES = 16 * 2**20  # a macro file is text; anything larger is not one
MACRO_SUFFIXES = (".ijm", ".txt", ".mac")  # what ImageJ runs as a macro
SCRIPT_SUFFIXES = (".py",)  # Jython scripts


@dataclass(frozen=True)
class MacroResult:
    """How a macro ended: its value, or the error that stopped it (``exit`` is not an error)."""

    value: str | None = None
    error: str | None = None
    line: int = 0
    exited: bool = False
    cancelled: bool = False
    kind: str = "macro"  # or "script" (Jython)

    @property
    def status(self) -> int:
        """The exit status of ``epyseg-ij macro``: 0 (also after ``exit``), 1 after an error, 130 when cancelled."""
        return 130 if self.cancelled else 1 if self.error is not None else 0

    def message(self) -> str:
        """The one line that reports the error (empty when there was none)."""
        if self.error is None:
            return ""
        if self.cancelled:
            return f"epyseg-ij: {self.error}"
        return f"epyseg-ij: {self.kind} error{f' in line {self.line}' if self.line else ''}: {self.error}"


def execute(code: str, arg: str = "") -> MacroResult:
    """Run ImageJ macro code on this thread, in this process's ImageJ (started headless if needed)."""
    if runtime.current() is None:
        runtime.start()
    return _ended(runtime.bridge_class("MacroRun").run(code, arg))


def run_macro(code: str, arg: str = "") -> str | None:
    """Run ImageJ macro code in this process's ImageJ (started headless if needed); return the macro's value.

    A failing macro returns None and logs its error line (``execute`` returns the details).
    """
    result = execute(code, arg)
    if result.error is not None:
        log.warning("%s", result.message())
    return result.value


def read_macro(path: str | os.PathLike) -> str:
    """The text of a macro file: UTF-8 (with or without BOM), UTF-16 with a BOM, else Latin-1, as ImageJ reads it.

    ``InputError`` for what cannot be a macro: a missing or unreadable file, a folder or device, binary data.
    """
    path = Path(path)
    try:
        if not path.is_file():
            what = "a folder" if path.is_dir() else "not a regular file" if path.exists() else "no such file"
            raise InputError(f"{path} is not a macro file: {what}")
        if path.stat().st_size > MAX_MACRO_BYTES:
            raise InputError(f"{path} is not a macro file: over {MAX_MACRO_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read the macro {path}: {error.strerror or error}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\0" not in data:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    raise InputError(f"{path} is not a macro file: it holds binary data")


def run_macro_file(path: str | os.PathLike, arg: str = "", gui: bool = False) -> int:
    """``epyseg-ij macro FILE``: run a macro (``.ijm``) or Jython script (``.py``) with the service up; its log goes
    to stdout.

    Without ``gui``, a new ImageJ runs on a private invisible display when Xvfb is installed (every ImageJ command
    works, nobody answers dialogs), else truly headless (only the EPySeg commands); an ImageJ already running in
    this process is used as it is. Returns the exit status: 0 when the macro ran to its end or stopped with
    ``exit`` (Fiji's status too; the message of ``exit("...")`` goes to stdout), 1 after a macro error (one line on
    stderr), 130 when cancelled, 2 when it could not start.
    """
    try:
        script = _kind(path) == "script"
        code = read_macro(path)  # a script is checked as a macro is: a readable text file
        imagej = _start(gui)
    except EpysegError as error:
        print(f"epyseg-ij: error: {error}", file=sys.stderr)
        return 2
    from ij import IJ

    if not imagej.headless:
        from java.lang import System

        System.setProperty("epyseg.errors", "log")  # no modal dialog for EPySeg's errors (ImageJ's go to stdout)
    log_length = len(str(IJ.getLog() or ""))
    result = _interruptible(lambda: execute_script(path, arg) if script else execute(code, arg))
    if not imagej.headless and IJ.getInstance() is None:
        _echo_log(log_length)  # without an ImageJ window the log went to a Log window, or nowhere
    if result.error is not None:
        print(result.message(), file=sys.stderr)
    return result.status


def _interruptible(run: Callable[[], MacroResult]) -> MacroResult:
    """``run()`` on a thread of its own, so that Ctrl-C (or SIGTERM) reaches this one: it stops the macro after its
    current statement (exit status 130). A script, or a macro stuck in one statement, that has not ended ``GRACE_S``
    s later (or at a second Ctrl-C) ends the process with 130."""
    outcome: list = []

    def target() -> None:
        try:
            outcome.append(run())
        except BaseException as error:  # re-raised on the caller's thread
            outcome.append(error)

    worker = threading.Thread(target=target, name="epyseg-ij macro", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt as stop:
        reason = str(stop) or "interrupted (Ctrl-C)"
        runtime.bridge_class("MacroRun").cancelAll(reason)
        try:
            worker.join(GRACE_S)
        except KeyboardInterrupt:
            pass
        if worker.is_alive():
            _exit_now(130)
        if not outcome or isinstance(outcome[0], BaseException):
            return MacroResult(error=reason, cancelled=True)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _exit_now(status: int) -> None:
    """End the process with ``status`` through the JVM's orderly shutdown (its threads may be busy)."""
    sys.stdout.flush()
    sys.stderr.flush()
    from java.lang import System

    System.exit(status)


def execute_script(path: str | os.PathLike, arg: str = "") -> MacroResult:
    """Run a Jython script file on this thread, in this process's ImageJ (started headless if needed)."""
    if runtime.current() is None:
        runtime.start()
    return _ended(runtime.bridge_class("ScriptRun").run(str(Path(path).resolve()), arg), "script")


def _ended(run, kind: str = "macro") -> MacroResult:
    """How an ``epyseg.bridge.MacroRun`` (or ``ScriptRun``, kind "script") ended."""
    error = run.getError()
    value = run.getValue()
    return MacroResult(
        value=None if value is None else str(value),
        error=None if error is None else str(error),
        line=int(run.getLine()),
        exited=bool(run.isExit()),
        cancelled=bool(run.isCancelled()),
        kind=kind,
    )


def _kind(path: str | os.PathLike) -> str:
    """The kind of file, ``macro`` or ``script``, by its extension; ``InputError`` for others."""
    suffix = Path(path).suffix.lower()
    if suffix in MACRO_SUFFIXES:
        return "macro"
    if suffix in SCRIPT_SUFFIXES:
        return "script"
    known = ", ".join(MACRO_SUFFIXES + SCRIPT_SUFFIXES)
    raise InputError(f"{path} is not a macro file: its name must end in {known} (.py runs as a Jython script)")


def _start(gui: bool) -> runtime.ImageJ:
    """The ImageJ for a macro: a display with ``gui``; else the private one when Xvfb is there, or headless."""
    if gui:
        imagej = runtime.start(headless=False)
        runtime.bridge_class("NoPerson").keepResults()  # every Measure row, as in a session with a Results window
        return imagej
    if runtime.current() is not None:
        return runtime.current()
    if not display.available():
        return runtime.start()
    try:
        display.start()
    except EpysegError as error:  # run what can run without ImageJ's own commands
        print(f"epyseg-ij: warning: {error}; the macro runs truly headless", file=sys.stderr)
        return runtime.start()
    imagej = runtime.start(headless=False)
    from . import service

    service.get().interactive = False  # the commands take their options, or their defaults, never a dialog
    runtime.bridge_class("NoPerson").install()
    return imagej


def _echo_log(start: int) -> None:
    from ij import IJ

    text = str(IJ.getLog() or "")[start:]
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def open_gui(fiji_dir: str | os.PathLike | None = None) -> int:
    """``epyseg-ij fiji``: open ImageJ (or the given Fiji) with the EPySeg commands; return when it is closed."""
    try:
        imagej = runtime.start(fiji_dir, headless=False)
    except EpysegError as error:
        print(f"epyseg-ij: error: {error}", file=sys.stderr)
        return 2
    from ij import IJ, ImageJ

    if imagej.gateway is not None:
        imagej.gateway.ui().showUI()
    elif IJ.getInstance() is None:
        ImageJ(ImageJ.STANDALONE)
    print("ImageJ is running with Plugins > EPySeg; close its window to quit.", file=sys.stderr)
    try:
        while IJ.getInstance() is not None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    return 0


def end_process(status: int) -> None:
    """End the process now when ImageJ has a display: idle AWT and Java pool threads would keep the JVM up a while.

    Does nothing headless (or before ImageJ started), where the process ends normally.
    """
    imagej = runtime.current()
    if imagej is None or imagej.headless:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    from java.lang import System

    System.exit(status)
