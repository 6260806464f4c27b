"""Errors a user can act on: the CLI prints them on one line, ImageJ shows them as a macro error."""


class EpysegError(Exception):
    """Base class of every error caused by the user's input, files or settings."""


class InputError(EpysegError, ValueError):
    """An image, file, folder or option that cannot be used as given."""


class ModelError(EpysegError):
    """A model that cannot be found, downloaded, verified or loaded."""


class Cancelled(EpysegError):
    """The user cancelled a long job (Esc in ImageJ, Ctrl-C in the CLI)."""


class CheckpointError(EpysegError):
    """A training checkpoint or model could not be written (typically a full disk); the previous one is intact."""


class DivergedError(EpysegError):
    """Training stopped because the loss became NaN or infinite; the last good checkpoint is intact."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (at most 200 characters), or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
