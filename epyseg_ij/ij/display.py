"""A private, invisible X display (Xvfb) for ImageJ, so that headless macros run every ImageJ command.

Without a display, ImageJ 1.x has no command table and no dialogs: ``run("Properties...")``, ``run("Set
Measurements...")``, ``saveAs("Results", ...)`` and ``roiManager(...)`` fail. Fiji's ``--headless`` patches ImageJ's
bytecode to work around that; here ImageJ runs with a real (virtual) display that nobody sees instead, and
``epyseg.bridge.NoPerson`` stands in for the person who is not there: a dialog without macro options takes its
defaults (as in Fiji's headless mode), a message goes to stdout, and a command that waits for a person (waitForUser,
file choosers) stops the macro with a one-line error.

The server is this process's alone: it picks a free display number itself (``-displayfd``), listens on no TCP port,
and admits only clients that hold a random cookie (an Xauthority file readable by this user only). It ends with the
process (``PR_SET_PDEATHSIG`` on Linux, and ``stop`` at exit).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import EpysegError

SCREEN = "1280x1024x24"
START_TIMEOUT = 30.0  # s
FAMILY_WILD = 0xFFFF  # an Xauthority entry for any host and display number

_server: subprocess.Popen | None = None
_folder: tempfile.TemporaryDirectory | None = None


def available() -> bool:
    """True when Xvfb is installed."""
    return shutil.which("Xvfb") is not None


def start() -> str:
    """Start the private display (once) and point this process at it (``DISPLAY``, ``XAUTHORITY``); its name.

    ``EpysegError`` when Xvfb is missing or does not start.
    """
    global _server, _folder
    if _server is not None:
        return os.environ["DISPLAY"]
    if not available():
        raise EpysegError("Xvfb is not installed: install it (apt-get install xvfb) to run ImageJ's own commands")
    _folder = tempfile.TemporaryDirectory(prefix="epyseg-ij-x11-")
    cookie = Path(_folder.name) / "Xauthority"
    cookie.write_bytes(_xauth_entry(secrets.token_bytes(16)))
    read, write = os.pipe()
    command = ["Xvfb", "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp", "-auth", str(cookie)]
    try:
        _server = subprocess.Popen(
            command,
            pass_fds=[write],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    finally:
        os.close(write)
    number = _read_display_number(read)
    if not number:
        stop()
        raise EpysegError("the private display (Xvfb) did not start (run with --gui under xvfb-run instead)")
    atexit.register(stop)
    os.environ["DISPLAY"] = f":{number}"
    os.environ["XAUTHORITY"] = str(cookie)
    return os.environ["DISPLAY"]


def stop() -> None:
    """End the private display (the JVM's AWT must be done with it)."""
    global _server, _folder
    if _server is not None:
        _server.terminate()
        try:
            _server.wait(10)
        except subprocess.TimeoutExpired:
            _server.kill()
        _server = None
    if _folder is not None:
        _folder.cleanup()
        _folder = None


def _read_display_number(fd: int) -> str:
    """What Xvfb writes on ``-displayfd`` once it accepts clients ("" if it ended first)."""
    import select

    with os.fdopen(fd) as pipe:
        ready, _, _ = select.select([pipe], [], [], START_TIMEOUT)
        return pipe.readline().strip() if ready else ""


def _xauth_entry(cookie: bytes) -> bytes:
    """One Xauthority record: MIT-MAGIC-COOKIE-1 for any address and display number (Xlib matches it for ours)."""

    def field(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    return struct.pack(">H", FAMILY_WILD) + field(b"") + field(b"") + field(b"MIT-MAGIC-COOKIE-1") + field(cookie)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when this process ends, however it ends (the JVM's exit included)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
