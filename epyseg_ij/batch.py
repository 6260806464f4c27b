"""Segment many image files: find them, skip what is done, write results safely, report per file."""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import files, io, models
from .errors import Cancelled, EpysegError, InputError
from .pipeline import segment

log = logging.getLogger(__name__)


@dataclass
class FileReport:
    """The outcome for one input file."""

    path: Path
    status: str  # "written", "skipped" or "failed"
    message: str = ""
    n_cells: int = 0
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)


def find_images(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Image files named by paths, folders (their images, not sub-folders) or glob patterns, in order, once each.

    A file given twice (say by a relative and an absolute path) is listed once. Tissue Analyzer files (masks, their
    backups, markers) and the TA folders that hold them are refused: they are results, not images.
    """
    inputs = list(map(str, inputs))
    found: list[Path] = []
    for item in inputs:
        if any(c in item for c in "*?["):
            found += [p for p in map(Path, sorted(glob.glob(item))) if _is_image(p)]
        elif Path(item).is_dir():
            found += [p for p in _listing(Path(item)) if _is_image(p)]
        elif os.path.lexists(item):
            found.append(Path(item))
        else:
            raise InputError(f"{item}: no such file or folder")
    unique: list[Path] = []
    seen: set = set()
    for path in found:
        if io.is_ta_file(path):
            raise InputError(f"{path} is a Tissue Analyzer file, not an image: give the image, or the folder above")
        if not seen & _names(path):
            unique.append(path)
            seen |= _names(path)
    if not unique:
        raise InputError(f"no images found in {', '.join(inputs)}")
    return unique


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in io.IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def _listing(folder: Path) -> list[Path]:
    """The files of a folder, sorted; a Tissue Analyzer image folder is refused with a hint."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise files.file_error(error, folder, "read the folder") from None
    held = [p.name for p in entries if io.is_ta_file(p)]
    if held:
        raise InputError(
            f"{folder} is a Tissue Analyzer image folder (it holds {held[0]}): give its image, or the folder above "
            f"it, {folder.parent}"
        )
    return entries


def _names(path: Path) -> set:
    """Keys of the file a path names, whatever its spelling: its resolved path; its device and inode if it exists
    (which also catch hard links and another case on a case-insensitive disk)."""
    try:
        keys: set = {path.resolve()}
    except (OSError, RuntimeError):  # a loop of links
        keys = {path.absolute()}
    try:
        stat = path.stat()
    except OSError:
        return keys
    return keys | {(stat.st_dev, stat.st_ino)}


def output_paths(path: Path, ta: bool, out_dir: Path | None) -> list[Path]:
    """Where the results of one image go: its TA mask, or ``<stem>_outlines.tif`` and ``<stem>_labels.tif``."""
    if ta:
        return [io.ta_mask_path(path)]
    return [out_dir / f"{path.stem}_outlines.tif", out_dir / f"{path.stem}_labels.tif"]


def segment_files(
    paths: Iterable[Path],
    *,
    model: str | os.PathLike | models.Model | None = None,
    ta: bool = True,
    out_dir: os.PathLike | None = None,
    overwrite: bool = False,
    on_file: Callable[[FileReport], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> list[FileReport]:
    """Segment image files into the TA layout (``ta=True``) or into ``out_dir``.

    Each output file that exists is kept unless ``overwrite`` (so an interrupted batch resumes); a hand-corrected
    TA mask is never replaced. A file that cannot be read or segmented, or whose output is an image of the batch or
    the output of an earlier one (``a.tif`` and ``a.png`` share ``a/handCorrection.tif``), is reported as failed
    and the batch goes on. ``on_file`` receives each report as soon as it is known; ``progress`` and ``options``
    go to ``segment``.
    """
    if not ta and out_dir is None:
        raise InputError("give an output folder, or write the Tissue Analyzer layout")
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None:
        _check_writable(out_dir)
    network = models.load(model)
    paths = list(map(Path, paths))
    claimed: dict = {key: None for p in paths for key in _names(p)}  # None: an input, never an output
    reports = []
    for path in paths:
        outputs = output_paths(path, ta, out_dir)
        report = _claim(path, outputs, claimed)
        report = report or _segment_file(path, outputs, ta, network, overwrite, progress, options)
        log.info("%s: %s %s", path, report.status, report.message)
        reports.append(report)
        if on_file:
            on_file(report)
    return reports


def _claim(path: Path, outputs: list[Path], claimed: dict) -> FileReport | None:
    """A failure report if an output is an image of the batch or an earlier image's output; else they are claimed."""
    for output in outputs:
        for key in _names(output) & claimed.keys():
            owner = claimed[key]
            what = "an image of this batch" if owner is None else f"also the output of {owner}"
            return FileReport(path, "failed", f"{output} is {what}: not written (rename one of them)")
    claimed.update((key, path) for output in outputs for key in _names(output))
    return None


def _segment_file(path, outputs, ta, network, overwrite, progress, options) -> FileReport:
    start = time.perf_counter()
    try:
        todo, message = _todo(outputs, ta, overwrite)
        if not todo:
            return FileReport(path, "skipped", message)
        image = io.read_image(path)
        result = segment(image.array, network, axes=image.axes, progress=progress, **options)
        calibration = {"spacing": image.spacing, "unit": image.unit}
        if ta:
            provenance = {"model": network.name, "image": path.name}
            written = io.write_ta_mask(path, result.outlines, overwrite=overwrite, provenance=provenance, **calibration)
            if not written.written:
                return FileReport(path, "skipped", written.message)
            message = written.message
        else:
            arrays = dict(zip(outputs, (result.outlines, result.labels), strict=True))
            for output in todo:
                io.write_tiff(output, arrays[output], axes=result.axes, overwrite=overwrite, **calibration)
    except Cancelled:
        raise
    except EpysegError as error:
        return FileReport(path, "failed", str(error))
    except OSError as error:
        return FileReport(path, "failed", f"{error.filename or path}: {error.strerror or error}")
    return FileReport(path, "written", message, sum(result.n_cells), time.perf_counter() - start, todo)


def _todo(outputs: list[Path], ta: bool, overwrite: bool) -> tuple[list[Path], str]:
    """The outputs to write, and why the others are kept: each file follows the no-overwrite rule on its own."""
    if ta:
        refusal = io.ta_refusal(outputs[0], overwrite)
        return ([], refusal) if refusal else (outputs, "")
    kept = [p for p in outputs if files.require_regular(p) and not overwrite]
    message = "; ".join(f"{p} exists: kept" for p in kept) + " (use --overwrite to replace it)" if kept else ""
    return [p for p in outputs if p not in kept], message


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise InputError(f"the output folder {folder} is not writable")
