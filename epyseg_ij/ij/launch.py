"""What the command line starts: a macro file in the embedded ImageJ, or the ImageJ/Fiji GUI with EPySeg."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from ..errors import EpysegError
from . import runtime, service

log = logging.getLogger(__name__)


def run_macro(code: str, arg: str = "") -> str | None:
    """Run ImageJ macro code in this process's ImageJ (started headless if needed); return the macro's value.

    A failing macro returns None; ``service.get().last_error`` or ``IJ.getErrorMessage`` say why.
    """
    if runtime.current() is None:
        runtime.start()
    from ij import IJ

    value = IJ.runMacro(code, arg)
    return None if value is None else str(value)


def run_macro_file(path: str | os.PathLike, arg: str = "", gui: bool = False) -> int:
    """``epyseg-ij macro FILE.ijm``: run a macro file with the service up; its log goes to stdout.

    Returns the exit status: 0 when the macro ran to its end, 1 after a macro error (printed on stderr),
    130 when it was cancelled, 2 when it could not start.
    """
    path = Path(path)
    try:
        code = path.read_text()
    except OSError as error:
        print(f"epyseg-ij: error: cannot read the macro {path}: {error.strerror or error}", file=sys.stderr)
        return 2
    try:
        imagej = runtime.start(headless=not gui)
    except EpysegError as error:
        print(f"epyseg-ij: error: {error}", file=sys.stderr)
        return 2
    from ij import IJ
    from ij.macro import Interpreter

    interpreter = Interpreter()
    interpreter.setIgnoreErrors(True)  # no error dialog to wait on (headless ImageJ cannot even show it): stderr
    if not imagej.headless:
        from java.lang import System

        System.setProperty("epyseg.errors", "log")  # EPySeg's errors on stderr too, not in a modal dialog
        IJ.redirectErrorMessages(True)
    before = service.get().last_error
    log_length = len(str(IJ.getLog() or ""))
    interpreter.run(code, arg)
    if not imagej.headless and IJ.getInstance() is None:
        _echo_log(log_length)  # without an ImageJ window the log went to a Log window, or nowhere
    error = interpreter.getErrorMessage()
    if error is None and not interpreter.wasError():
        return 0
    message = str(error or "macro error")
    from_epyseg = service.get().last_error not in (None, before) and service.get().last_error == message
    if from_epyseg and "cancelled" in message:
        return 130
    if not from_epyseg:  # EPySeg's own errors were already printed by the plug-in, with their line
        line = _line_number(interpreter)
        print(f"epyseg-ij: macro error{f' in line {line}' if line else ''}: {message}", file=sys.stderr)
    return 1


def _line_number(interpreter) -> int | None:
    try:
        return int(interpreter.getLineNumber()) or None
    except Exception:  # a different ImageJ version: no line number
        return None


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
    """End the process now (after a GUI session): idle AWT and Java pool threads would keep the JVM up a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    from java.lang import System

    System.exit(status)
