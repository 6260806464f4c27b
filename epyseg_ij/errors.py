"""Errors a user can act on: the CLI prints them on one line, ImageJ shows them as a macro error."""


class EpysegError(Exception):
    """Base class of every error caused by the user's input, files or settings."""


class InputError(EpysegError, ValueError):
    """An image, file, folder or option that cannot be used as given."""


class ModelError(EpysegError):
    """A model that cannot be found, downloaded, verified or loaded."""


class Cancelled(EpysegError):
    """The user cancelled a long job (Esc in ImageJ, Ctrl-C in the CLI)."""
