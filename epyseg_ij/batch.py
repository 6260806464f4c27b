"""Segment many image files: find them, skip what is done, write results safely, report per file."""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import io, models
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
    """Image files named by paths, folders (their images, not sub-folders) or glob patterns, in order, once each."""
    found: list[Path] = []
    for item in map(str, inputs):
        if any(c in item for c in "*?["):
            matches = [Path(p) for p in sorted(glob.glob(item))]
        elif Path(item).is_dir():
            matches = sorted(p for p in Path(item).iterdir() if p.is_file())
        elif Path(item).exists():
            found.append(Path(item))
            continue
        else:
            raise InputError(f"{item}: no such file or folder")
        found += [p for p in matches if p.suffix.lower() in io.IMAGE_SUFFIXES and not p.name.startswith(".")]
    unique = list(dict.fromkeys(found))
    if not unique:
        raise InputError(f"no images found in {', '.join(map(str, inputs))}")
    return unique


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

    Files whose results exist are skipped unless ``overwrite`` (so an interrupted batch resumes); a hand-corrected
    TA mask is never replaced. A file that cannot be read or segmented is reported as failed and the batch goes on.
    ``on_file`` receives each report as soon as it is known; ``progress`` and ``options`` go to ``segment``.
    """
    if not ta and out_dir is None:
        raise InputError("give an output folder, or write the Tissue Analyzer layout")
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None:
        _check_writable(out_dir)
    network = models.load(model)
    reports = []
    for path in paths:
        report = _segment_file(Path(path), network, ta, out_dir, overwrite, progress, options)
        log.info("%s: %s %s", path, report.status, report.message)
        reports.append(report)
        if on_file:
            on_file(report)
    return reports


def _segment_file(path, network, ta, out_dir, overwrite, progress, options) -> FileReport:
    outputs = output_paths(path, ta, out_dir)
    refusal = io.ta_refusal(outputs[0], overwrite) if ta else ""
    if not ta and not overwrite and all(p.exists() for p in outputs):
        refusal = f"{outputs[0].name} exists: kept (use --overwrite to replace it)"
    if refusal:
        return FileReport(path, "skipped", refusal)
    start = time.perf_counter()
    try:
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
            io.write_tiff(outputs[0], result.outlines, axes=result.axes, **calibration)
            io.write_tiff(outputs[1], result.labels, axes=result.axes, **calibration)
            message = ""
    except Cancelled:
        raise
    except EpysegError as error:
        return FileReport(path, "failed", str(error))
    except OSError as error:
        return FileReport(path, "failed", f"{error.filename or path}: {error.strerror or error}")
    return FileReport(path, "written", message, sum(result.n_cells), time.perf_counter() - start, outputs)


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise InputError(f"the output folder {folder} is not writable")
