"""The EPySeg service inside the JVM: one dispatcher for every entry point, one worker thread for TensorFlow.

Every way into Python (menu commands, ``run(...)`` and ``call(...)`` in macros, Jython scripts, Python code) ends
in ``Service.request``. The command itself (option parsing, dialogs, reading the current image, showing results)
runs on the caller's thread, because ImageJ keeps per-thread state (macro options, batch-mode current image);
the heavy part (``Service.compute``: TensorFlow, post-processing) runs on one dedicated worker thread with a large
stack, one job at a time, while the caller waits without holding any Python lock.

A Python error never reaches the JVM as an exception: the reply carries its one-line message and kind, and the
Java side turns it into a macro error or an ImageJ error message. Long jobs show their phase and steps in ImageJ's
status line and progress bar (``Progress``); Esc (or the ``cancel`` command) makes the next step raise ``Cancelled``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..errors import Cancelled, EpysegError

log = logging.getLogger(__name__)

KEY = "epyseg.pybridge"  # the System property (and IJ property) that holds the dispatcher
LAST_ERROR = "epyseg.lastError"
WORKER_STACK = 256 * 2**20  # deep Keras/TF call chains; the JVM's threads have 1-16 MiB


@dataclass
class Request:
    """One call into the service, whoever made it."""

    command: str
    options: str | None = None  # macro options; None means "no macro": show a dialog where there is a GUI
    image: Any = None  # an ImagePlus passed by a script; None means the current image
    display: bool = False  # show results in ImageJ (commands) or only return them (scripts)


@dataclass
class Reply:
    """What a command returns: a string for macros (``value``) and Java objects for scripts."""

    value: str = ""
    objects: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Request, "Service"], Reply]
COMMANDS: dict[str, Handler] = {}  # filled by the ``commands`` package: name -> handler


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under one or more command names (``@command("segment")``)."""

    def register(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = handler
        return handler

    return register


class Worker:
    """One big-stack daemon thread that runs jobs in submission order."""

    def __init__(self, name: str = "epyseg-worker", stack_size: int = WORKER_STACK):
        self._name = name
        self._stack_size = stack_size
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable, *args) -> Future:
        """Queue ``fn(*args)``; the future holds its result or exception."""
        future: Future = Future()
        self._ensure_started()
        self._jobs.put((future, fn, args))
        return future

    def run(self, fn: Callable, *args):
        """Run ``fn(*args)`` on the worker and wait for it (inline when already on the worker: no deadlock)."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        return self.submit(fn, *args).result()  # waits with the GIL released, holding no Python lock

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            previous = threading.stack_size(self._stack_size)
            try:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            finally:
                threading.stack_size(previous)

    def _loop(self) -> None:
        while True:
            future, fn, args = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # handed to the waiting caller, never lost
                future.set_exception(error)


class Service:
    """Dispatches requests to the commands and runs their heavy work on the worker thread."""

    def __init__(self, imagej=None, commands: dict[str, Handler] | None = None):
        self.imagej = imagej
        self.commands = dict(COMMANDS if commands is None else commands)
        self.worker = Worker()
        self.last_error: str | None = None
        self.models: dict[str, Any] = {}  # models registered from Python, usable by name in ImageJ
        self.interactive = not self.headless  # a person answers dialogs (False on epyseg-ij's private display)
        self.status = "idle"
        self._cancel = threading.Event()
        self._busy = threading.Event()

    @property
    def headless(self) -> bool:
        return self.imagej is None or self.imagej.headless

    @property
    def busy(self) -> bool:
        """True while a job runs on the worker."""
        return self._busy.is_set()

    # ------------------------------------------------------------------------------------------------- requests

    def request(self, command: str, options: str | None = None, image=None, display: bool = False) -> Reply:
        """Run a command from Python; raises ``EpysegError`` (one-line message) on failure."""
        handler = self.commands.get(command)
        if handler is None:
            raise EpysegError(f"unknown EPySeg command {command!r}; known: {', '.join(sorted(self.commands))}")
        return handler(Request(command, options, image, display), self)

    def handle(self, java_request):
        """The dispatcher's ``apply``: a ``java.util.Map`` request in, a ``java.util.HashMap`` reply out."""
        from java.util import HashMap

        reply = HashMap()
        try:
            command = str(java_request.get("command"))
            options = java_request.get("options")
            display = java_request.get("display")
            result = self.request(
                command,
                None if options is None else str(options),
                java_request.get("image"),
                bool(display) if display is not None else False,
            )
            reply.put("value", result.value)
            for key, value in result.objects.items():
                reply.put(key, value)
        except (Exception, KeyboardInterrupt) as error:  # every error becomes one line; ImageJ lives on
            if isinstance(error, KeyboardInterrupt):
                self.cancel()  # the job on the worker stops at its next progress report
            message, kind = describe_error(error)
            self._failed(reply, message, kind)
        return reply

    def _failed(self, reply, message: str, kind: str) -> None:
        from java.lang import System

        self.last_error = message
        System.getProperties().put(LAST_ERROR, message)
        reply.put("error", message)
        reply.put("kind", kind)

    # ---------------------------------------------------------------------------------------------- heavy work

    def compute(self, fn: Callable, *args, what: str = "EPySeg", unit: str = ""):
        """Run ``fn(*args, progress)`` on the worker thread and wait for it; ``progress`` is a ``Progress``.

        ``progress(done, total)`` updates ImageJ's progress bar and status line (``what: done/total unit``) and
        raises ``Cancelled`` after Esc or ``cancel()``. Jobs from several callers run one after the other.
        """
        return self.worker.run(self._job, fn, args, what, unit)

    def _job(self, fn: Callable, args: tuple, what: str, unit: str):
        self._cancel.clear()
        _reset_escape()
        self._busy.set()
        self.status = f"{what}: starting"
        try:
            return fn(*args, Progress(self, what, unit))
        finally:
            self._busy.clear()
            self.status = "idle"
            _show_progress(1, 1)

    def cancel(self) -> None:
        """Ask the running job to stop at its next progress report."""
        self._cancel.set()

    def cancel_requested(self) -> bool:
        """True after Esc or ``cancel()`` during the current job."""
        return self._cancel.is_set() or _escape_pressed()

    def register_model(self, name: str, model) -> None:
        """Make a loaded model (``epyseg_ij.models.Model``) usable as ``model=name`` in ImageJ."""
        self.models[name] = model


class Progress:
    """What a long job shows in ImageJ: a phase (``say``) or steps done out of a total, in the status line and the
    progress bar; Esc (or the ``cancel`` command) makes the next step raise ``Cancelled``.

    ``progress(done, total)`` reports a step and checks for cancellation; ``show`` reports without checking (for
    code that polls ``cancel_requested`` itself).
    """

    def __init__(self, service: Service, what: str, unit: str = ""):
        self.service = service
        self.what = what
        self.unit = unit

    def __call__(self, done: int, total: int, text: str | None = None) -> None:
        self.show(done, total, text)
        if self.service.cancel_requested():
            _reset_escape()
            raise Cancelled(f"{self.what} cancelled")

    def show(self, done: int, total: int, text: str | None = None) -> None:
        """Show ``done`` of ``total`` (``text`` replaces the ``done/total unit`` part of the status line)."""
        self.say(text or f"{done}/{total}{' ' + self.unit if self.unit else ''}")
        _show_progress(done, total)

    def say(self, text: str) -> None:
        """Show a phase of the job in the status line, e.g. ``loading model…``."""
        self.service.status = f"{self.what}: {text}"
        _show_status(self.service.status)


# --------------------------------------------------------------------------------------------- ImageJ helpers


def _show_progress(done: int, total: int) -> None:
    from ij import IJ

    IJ.showProgress(int(done), int(total))


def _show_status(text: str) -> None:
    from ij import IJ

    IJ.showStatus(text)


def _escape_pressed() -> bool:
    from ij import IJ

    return bool(IJ.escapePressed())


def _reset_escape() -> None:
    from ij import IJ

    IJ.resetEscape()


def describe_error(error: BaseException) -> tuple[str, str]:
    """The one-line message and kind (for the Java side) of an error raised by a command, worded as the CLI does.

    ``EpysegError`` says what to do; a full memory, deep recursion, a file system refusal or a Ctrl-C is said as
    such; anything else is a bug, shown as ``internal error: ...`` (its traceback is logged at INFO level).
    """
    if isinstance(error, EpysegError):
        return _first_line(error), type(error).__name__
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)", "Cancelled"
    if isinstance(error, MemoryError) or type(error).__name__.endswith("OutOfMemoryError"):  # Python's, or the JVM's
        return "out of memory: use a smaller tile or batch, or a smaller image", "MemoryError"
    if isinstance(error, RecursionError):
        return f"input nested too deeply ({_first_line(error)})", "RecursionError"
    if isinstance(error, OSError):
        files = " -> ".join(str(f) for f in (error.filename, error.filename2) if f is not None)
        reason = error.strerror or _first_line(error)
        return (f"{files}: {reason}" if files else reason), "OSError"
    log.info("EPySeg command failed", exc_info=error)
    return f"internal error: {type(error).__name__}: {_first_line(error)}", "InternalError"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


# -------------------------------------------------------------------------------------------- registration

_service: Service | None = None
_dispatcher = None  # keeps the Java proxy's Python object alive


def get() -> Service:
    """The service of this process (``start`` installs it)."""
    if _service is None:
        raise EpysegError("the EPySeg ImageJ service is not running: call epyseg_ij.ij.start() first")
    return _service


def install(imagej) -> Service:
    """Create the service and register its dispatcher where every class loader finds it."""
    global _service, _dispatcher
    from ij import IJ
    from java.lang import System

    _service = Service(imagej)
    _dispatcher = _make_dispatcher(_service)
    System.getProperties().put(KEY, _dispatcher)
    IJ.setProperty(KEY, _dispatcher)
    return _service


def _make_dispatcher(service: Service):
    from jpype import JImplements, JOverride

    @JImplements("java.util.function.Function")
    class Dispatcher:
        """The one Java-visible entry point; ``toString`` shows in ImageJ's property lists."""

        @JOverride
        def apply(self, java_request):
            return service.handle(java_request)

        def toString(self):  # noqa: N802 (Java name)
            return "EPySeg Python service"

    return Dispatcher()
