"""What the command line starts: a macro file in the embedded ImageJ, or the ImageJ/Fiji GUI with EPySeg.

Macros run on the calling thread through ``epyseg.bridge.MacroRun``: the first error stops the macro (ImageJ's own
or an EPySeg command's) and is reported as one line, ``epyseg-ij: macro error in line N: ...``; ``exit`` is a normal
end. Macro files are read as ImageJ reads them: UTF-8, else Latin-1.
"""

from __future__ import annotations

import codecs
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import EpysegError, InputError
from . import runtime

log = logging.getLogger(__name__)

MAX_MACRO_BYTES = 16 * 2**20  # a macro file is text; anything larger is not one


@dataclass(frozen=True)
class MacroResult:
    """How a macro ended: its value, or the error that stopped it (``exit`` is not an error)."""

    value: str | None = None
    error: str | None = None
    line: int = 0
    exited: bool = False
    cancelled: bool = False

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
        return f"epyseg-ij: macro error{f' in line {self.line}' if self.line else ''}: {self.error}"


def execute(code: str, arg: str = "") -> MacroResult:
    """Run ImageJ macro code on this thread, in this process's ImageJ (started headless if needed)."""
    if runtime.current() is None:
        runtime.start()
    run = runtime.bridge_class("MacroRun").run(code, arg)
    error = run.getError()
    value = run.getValue()
    return MacroResult(
        value=None if value is None else str(value),
        error=None if error is None else str(error),
        line=int(run.getLine()),
        exited=bool(run.isExit()),
        cancelled=bool(run.isCancelled()),
    )


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
    """``epyseg-ij macro FILE.ijm``: run a macro file with the service up; its log goes to stdout.

    Returns the exit status: 0 when the macro ran to its end or stopped with ``exit`` (Fiji's status too; the
    message of ``exit("...")`` goes to stdout), 1 after a macro error (one line on stderr), 130 when cancelled,
    2 when it could not start.
    """
    try:
        code = read_macro(path)
        imagej = runtime.start(headless=not gui)
    except EpysegError as error:
        print(f"epyseg-ij: error: {error}", file=sys.stderr)
        return 2
    from ij import IJ

    if not imagej.headless:
        from java.lang import System

        System.setProperty("epyseg.errors", "log")  # no modal dialog for EPySeg's errors (ImageJ's go to stdout)
    log_length = len(str(IJ.getLog() or ""))
    result = execute(code, arg)
    if not imagej.headless and IJ.getInstance() is None:
        _echo_log(log_length)  # without an ImageJ window the log went to a Log window, or nowhere
    if result.error is not None:
        print(result.message(), file=sys.stderr)
    return result.status


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
