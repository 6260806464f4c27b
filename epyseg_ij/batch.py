"""Segment many image files: find them, skip what is done, write results safely, report per file.

Results go to the Tissue Analyzer layout (``"ta"``), to TIFFs in a folder (``"tiff"``) or to a Zarr group per image
in a folder named ``*.zarr`` (``"zarr"``, written out of core). With a Dask client, each image is a job on a worker
process (see ``cluster``) that runs the same ``_segment_file`` as a serial batch, under the same rules.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import backends, files, io, lazy, models
from .errors import Cancelled, EpysegError, InputError, first_line
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
        elif Path(item).is_dir() and not io.is_zarr(Path(item)):
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
    if path.name.startswith("."):
        return False
    return path.suffix.lower() in io.IMAGE_SUFFIXES and path.is_file() or io.is_zarr(path) and not lazy.is_result(path)


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


def layout(ta: bool, out_dir: os.PathLike | None) -> str:
    """``"ta"``, ``"zarr"`` (an output folder named ``*.zarr``) or ``"tiff"``."""
    return "ta" if ta else "zarr" if Path(out_dir).suffix.lower() == ".zarr" else "tiff"


def output_paths(path: Path, ta: bool | str, out_dir: Path | None) -> list[Path]:
    """Where the results of one image go: its TA mask, ``<stem>_outlines.tif`` and ``<stem>_labels.tif``, or the
    Zarr group ``<out_dir>/<stem>``."""
    kind = layout(ta, out_dir) if isinstance(ta, bool) else ta
    if kind == "ta":
        return [io.ta_mask_path(path)]
    if kind == "zarr":
        return [out_dir / path.stem]
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
    client=None,
    **options,
) -> list[FileReport]:
    """Segment image files into the TA layout (``ta=True``) or into ``out_dir``.

    Each output file that exists is kept unless ``overwrite`` (so an interrupted batch resumes); a hand-corrected
    TA mask is never replaced. A file that cannot be read or segmented, or whose output is an image of the batch or
    the output of an earlier one (``a.tif`` and ``a.png`` share ``a/handCorrection.tif``), is reported as failed
    and the batch goes on. ``out_dir`` named ``*.zarr`` receives a Zarr group per image (``<stem>/outlines``,
    ``labels``, ``bonds``), segmented out of core. ``on_file`` receives each report as soon as it is known;
    ``progress`` and ``options`` go to ``segment``.

    With ``client`` (a ``distributed.Client``, e.g. from ``cluster.client``) the images are segmented on its
    workers, each loading the model once; ``model`` is then a name or a path that the workers can open, ``on_file``
    is called as images finish (in any order) and ``progress``, which follows tiles in one process, is refused.
    Reports are returned in the order of ``paths``.
    """
    if not ta and out_dir is None:
        raise InputError("give an output folder, or write the Tissue Analyzer layout")
    kind = layout(ta, out_dir)
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None:
        _check_writable(out_dir, kind)
    if client is not None and progress is not None:
        raise InputError("progress follows tiles in one process: with a Dask client, follow images with on_file")
    network = backends.load(model, options.get("backend", "auto"))[0] if client is None else _model_for_workers(model)
    paths = list(map(Path, paths))
    claimed: dict = {key: None for p in paths for key in _names(p)}  # None: an input, never an output
    reports: list[FileReport | None] = [None] * len(paths)
    jobs = []

    def finish(index: int, report: FileReport) -> None:
        log.info("%s: %s %s", report.path, report.status, report.message)
        reports[index] = report
        if on_file:
            on_file(report)

    for index, path in enumerate(paths):
        outputs = output_paths(path, kind, out_dir)
        report = _claim(path, outputs, claimed)
        if report or client is None:
            finish(index, report or _segment_file(path, outputs, kind, network, overwrite, progress, options))
        else:
            jobs.append((index, (path, outputs, kind, network, overwrite, None, options)))
    if jobs:
        from . import cluster

        for job, report in cluster.run(client, _segment_on_worker, [job for _, job in jobs]):
            path = jobs[job][1][0]
            if isinstance(report, BaseException):
                report = FileReport(path, "failed", f"lost on its Dask worker: {type(report).__name__}: "
                                    f"{first_line(report)}")  # fmt: skip
            finish(jobs[job][0], report)
    return reports


def _model_for_workers(model) -> str | None:
    """What workers load: the model's name, or its file's absolute path; checked here, before any job."""
    if isinstance(model, models.Model):
        if model.path is None:
            raise InputError(f"model {model.name!r} exists only in this process: give Dask workers its name or file")
        return str(model.path.absolute())
    if model is None or str(model) == models.CLASSICAL_MODEL:
        return model
    models.resolve(model)  # an unknown model fails here; a published model is downloaded here, once
    file = Path(model).expanduser()
    return str(file.absolute()) if file.is_file() else str(model)


def _segment_on_worker(path, outputs, kind, model, overwrite, progress, options) -> FileReport:
    """``_segment_file`` on a Dask worker; ``models.load`` keeps the model of the worker's process."""
    network = backends.load(model, options.get("backend", "auto"))[0]
    return _segment_file(path, outputs, kind, network, overwrite, progress, options)


def _claim(path: Path, outputs: list[Path], claimed: dict) -> FileReport | None:
    """A failure report if an output is an image of the batch or an earlier image's output; else they are claimed."""
    for output in outputs:
        for key in _names(output) & claimed.keys():
            owner = claimed[key]
            what = "an image of this batch" if owner is None else f"also the output of {owner}"
            return FileReport(path, "failed", f"{output} is {what}: not written (rename one of them)")
    claimed.update((key, path) for output in outputs for key in _names(output))
    return None


def _segment_file(path, outputs, kind, network, overwrite, progress, options) -> FileReport:
    start = time.perf_counter()
    try:
        todo, message = _todo(outputs, kind, overwrite)
        if not todo:
            return FileReport(path, "skipped", message)
        image, axes, calibration = _open(path, lazily=kind == "zarr")
        if kind == "zarr":
            notes = {"image": path.name, **calibration}
            result = _segment_to_zarr(image, outputs[0], notes, network, overwrite, progress, axes=axes, **options)
            return FileReport(path, "written", "", sum(result.n_cells), time.perf_counter() - start, todo)
        result = segment(image, network, axes=axes, progress=progress, **options)
        if kind == "ta":
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


def _open(path: Path, lazily: bool) -> tuple[object, str | None, dict]:
    """An image, its axes (None: ``segment`` finds them) and calibration. A Zarr folder, and with ``lazily`` a TIFF,
    is its path, which ``segment`` reads a row of tiles at a time; other files are read into memory."""
    if io.is_zarr(path) or (lazily and path.suffix.lower() in io.TIFF_SUFFIXES):
        return path, None, io.calibration(path)
    image = io.read_image(path)
    return image.array, image.axes, {"spacing": image.spacing, "unit": image.unit}


def _segment_to_zarr(image, dest: Path, notes: dict, network, overwrite: bool, progress, **options):
    """Segment an image out of core into a new Zarr group with ``notes`` among its attributes, then put it at
    ``dest`` (replacing it if ``overwrite``)."""
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.new")
    try:
        result = segment(image, network, progress=progress, out=tmp, **options)
        lazy.annotate(tmp, **notes)
        with files.locked(dest.parent):
            files.put_folder(tmp, dest, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _todo(outputs: list[Path], kind: str, overwrite: bool) -> tuple[list[Path], str]:
    """The outputs to write, and why the others are kept: each file follows the no-overwrite rule on its own."""
    if kind == "ta":
        refusal = io.ta_refusal(outputs[0], overwrite)
        return ([], refusal) if refusal else (outputs, "")
    if kind == "zarr":
        if os.path.lexists(outputs[0]) and not io.is_zarr(outputs[0]):
            raise InputError(f"{outputs[0]} exists and is not a Zarr group: refused (move it away)")
        kept = os.path.lexists(outputs[0]) and not overwrite
        return ([], f"{outputs[0]} exists: kept (use --overwrite to replace it)") if kept else (outputs, "")
    kept = [p for p in outputs if files.require_regular(p) and not overwrite]
    message = "; ".join(f"{p} exists: kept" for p in kept) + " (use --overwrite to replace it)" if kept else ""
    return [p for p in outputs if p not in kept], message


def _check_writable(folder: Path, kind: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise InputError(f"the output folder {folder} is not writable")
    if kind == "zarr":
        lazy.make_root(folder)
