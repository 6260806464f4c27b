"""What every command needs: its options (macro or dialog), the current image and its channel, folders to write."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ...errors import InputError
from .. import dialogs
from ..options import format_options, parse
from ..service import Progress, Request, Service

MIN_SIDE = 8  # px; smaller images hold no cell worth segmenting


def options(request: Request, service: Service, command: str, spec, dialog=None) -> dict[str, Any]:
    """Options from the macro; from a dialog when a GUI user runs the command without options.

    The dialog's values become an options string that the Recorder records and that is parsed like a macro's, so
    the recorded line does what the dialog did.
    """
    text = request.options
    if text is None and service.interactive and dialog is not None:
        text = format_options(dialog(), spec)
        dialogs.record(command, text)
    return parse(text, spec, command)


def download(name: str, progress: Progress) -> None:
    """Download a published model that is not in the cache yet, with ImageJ's progress bar (Esc cancels)."""
    from ... import models

    if name in models.PRETRAINED and not models.is_downloaded(name):

        def downloaded(done: int, total: int) -> None:
            progress(done, total, f"downloading {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")

        models.fetch(name, downloaded)


def load_model(model, progress: Progress, backend: str = "tensorflow"):
    """Load a model (name, path or ``Model``) for ``backend`` on the worker, saying what takes time: a download,
    the loading (building the network, or importing its cached OpenVINO model)."""
    from ... import backends, models

    if not isinstance(model, models.Model):
        download(str(model), progress)
    progress.say(f"loading model {getattr(model, 'name', model)}…")
    return backends.load(model, backend)[0]


def current_image():
    from ij import WindowManager

    return WindowManager.getCurrentImage()  # the batch-mode image of this macro's thread, or the front window


def check_size(imp) -> None:
    width, height = int(imp.getWidth()), int(imp.getHeight())
    if width < MIN_SIDE or height < MIN_SIDE:
        raise InputError(f"image too small: {width}×{height} px; EPySeg needs at least {MIN_SIDE}×{MIN_SIDE} px")


def n_channels(imp) -> int:
    return 3 if int(imp.getBitDepth()) == 24 else int(imp.getNChannels())


def channel_index(imp, channel: int) -> int | None:
    """The 0-based channel to segment; RGB and multichannel images need ``channel=`` (1-based)."""
    n = n_channels(imp)
    if channel == 0:
        if n > 1:
            kind = "an RGB image" if int(imp.getBitDepth()) == 24 else f"a {n}-channel image"
            raise InputError(f"{kind}: choose the membrane channel with channel=1..{n}")
        return None
    if channel > n:
        raise InputError(f"channel={channel} does not exist: the image has {n} channel(s)")
    return channel - 1


def stem(imp) -> str:
    title = str(imp.getTitle())
    name, ext = os.path.splitext(title)
    return name if ext.lower() in (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".lsm", ".czi") else title


def source_file(imp) -> Path | None:
    info = imp.getOriginalFileInfo()
    if info is None or not info.directory or not info.fileName:
        return None
    path = Path(str(info.directory)) / str(info.fileName)
    return path if path.is_file() else None


def writable_folder(folder: str) -> Path:
    """The folder, created if needed, after checking that a file can be written there."""
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise InputError(f"cannot write to the output folder {path}: {error.strerror or error}") from None
    return path


def log(text: str) -> None:
    from ij import IJ

    IJ.log(text)


def status(text: str) -> None:
    """A line in ImageJ's status bar."""
    from ij import IJ

    IJ.showStatus(text)
