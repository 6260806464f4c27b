"""Files: read images, write ImageJ TIFFs atomically, and the Tissue Analyzer folder layout and its safety rules.

Tissue Analyzer (TA) keeps the segmentation of ``dir/img.tif`` in ``dir/img/handCorrection.tif`` (8-bit, 255 on
1-px boundaries). That file may hold hours of hand correction, so (with the primitives of ``files``):

- every write goes to a temporary file that is renamed into place: an interrupted run or a full disk leaves no
  half-written file; only regular files are read, replaced or backed up;
- beside each mask it writes, epyseg-ij leaves a marker ``epyseg_ij.json`` with the mask's checksum, so it can tell
  its own untouched output from a mask a person has corrected since (``is_hand_corrected``); a marker that cannot be
  understood makes the mask precious (unknown provenance);
- an existing mask is never replaced unless asked (``overwrite``), never when it was hand-corrected, and before it is
  replaced it is copied to a new, verified backup (``handCorrection.<time>[-N].tif``) that never replaces anything;
- the mask and its marker change together or not at all, under a lock on their folder; a mask identical to the new
  one is left as it is.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile

from . import files
from .errors import InputError

log = logging.getLogger(__name__)

TA_MASK = "handCorrection.tif"
GROUND_TRUTH = "groundTruth.tif"  # synth's exact masks, in the TA layout: never taken for a hand correction
MARKER = "epyseg_ij.json"
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".lsm")
TIFF_SUFFIXES = (".tif", ".tiff", ".lsm")
_MARKER_MAX_BYTES = 1 << 16
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Image:
    """Pixels with what ImageJ knows about them."""

    array: np.ndarray
    axes: str  # tifffile letters, e.g. "YX", "ZYX", "TZCYX", "YXS" (S = RGB samples)
    spacing: tuple[float, float] | None = None  # pixel height and width in `unit`
    unit: str | None = None


def read_image(path: os.PathLike) -> Image:
    """Read a TIFF (ImageJ hyperstacks, OME, LSM; any compression) or a PNG/JPEG/BMP; one clear error otherwise."""
    path = Path(path)
    if not files.require_regular(path):
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            return _read_tiff(path)
        from skimage import io as skio

        array = np.asarray(skio.imread(path))
    except InputError:
        raise
    except OSError as error:
        if error.errno is not None:
            raise files.file_error(error, path, "read") from None
        raise InputError(f"{path}: not a readable image ({_first_line(error)})") from None
    except Exception as error:
        raise InputError(f"{path}: not a readable image ({_first_line(error)})") from None
    axes = "YX" if array.ndim == 2 else "YXS" if array.ndim == 3 else ""
    if not axes:
        raise InputError(f"{path}: unsupported image shape {array.shape}")
    return Image(array, axes)


def _read_tiff(path: Path) -> Image:
    with _tifffile_notes() as notes, tifffile.TiffFile(path) as tif:
        meta = tif.imagej_metadata or {}
        if tif.is_imagej:
            array, axes = _imagej_series(tif, path, meta, notes)
        else:
            array, axes = tif.series[0].asarray(), tif.series[0].axes
        spacing, unit = _calibration(tif)
    for note in notes:
        log.warning("%s: %s", path, note)
    return Image(array, axes.replace("I", "Z").replace("Q", "Z"), spacing, unit)


def is_zarr(path: os.PathLike) -> bool:
    """Whether ``path`` is a Zarr store: a folder with Zarr metadata (``zarr.json``, ``.zarray`` or ``.zgroup``)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup"))


def calibration(path: os.PathLike) -> dict:
    """``{"spacing": ..., "unit": ...}`` of a TIFF as ``read_image`` finds them, without reading its pixels; None
    for other files."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES or not files.require_regular(path):
        return {"spacing": None, "unit": None}
    try:
        with _tifffile_notes(), tifffile.TiffFile(path) as tif:
            spacing, unit = _calibration(tif)
    except (OSError, ValueError, tifffile.TiffFileError) as error:
        raise InputError(f"{path}: not a readable image ({_first_line(error)})") from None
    return {"spacing": spacing, "unit": unit}


def _calibration(tif: tifffile.TiffFile) -> tuple[tuple[float, float] | None, str | None]:
    unit = (tif.imagej_metadata or {}).get("unit")
    spacing = _spacing(tif.pages.first.tags) if unit not in (None, "", "pixel", "pixels") else None
    return spacing, unit if spacing else None


def _imagej_series(tif: tifffile.TiffFile, path: Path, meta: dict, notes: list[str]) -> tuple[np.ndarray, str]:
    """The ImageJ hyperstack; the images the file holds, with a warning, when its metadata claims others."""
    try:
        series = tif.series[0]
        array = series.asarray() if series.kind == "imagej" else None
        if array is not None and array.shape == tuple(series.shape):
            return array, series.axes
    except Exception:  # noqa: BLE001 - metadata tifffile cannot follow (images=abc, frames=1e400): as ImageJ, read on
        pass
    claims = ", ".join(f"{k}={meta[k]}" for k in ("images", "channels", "slices", "frames") if k in meta)
    log.warning("%s: its ImageJ metadata (%s) does not match the file: read the images it holds", path, claims)
    notes.clear()  # tifffile's own complaints about it
    with tifffile.TiffFile(path, is_imagej=False) as plain:
        return plain.series[0].asarray(), plain.series[0].axes


def _spacing(tags) -> tuple[float, float] | None:
    """Pixel height and width from the resolution tags, None when they are missing or make no sense."""
    try:
        (xn, xd), (yn, yd) = tags["XResolution"].value, tags["YResolution"].value
        spacing = (yd / yn, xd / xn)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return spacing if all(np.isfinite(spacing)) and min(spacing) > 0 else None


@contextmanager
def _tifffile_notes() -> Iterator[list[str]]:
    """Hold back what tifffile logs in this thread while a file is read, to report it with the file's name."""
    notes: list[str] = []
    thread = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        if threading.get_ident() != thread:
            return True
        notes.append(record.getMessage())
        return False

    logger = logging.getLogger("tifffile")
    logger.addFilter(keep)
    try:
        yield notes
    finally:
        logger.removeFilter(keep)


def write_tiff(
    path: os.PathLike,
    array: np.ndarray,
    *,
    axes: str | None = None,
    spacing: tuple[float, float] | None = None,
    unit: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write an ImageJ TIFF atomically; uint32 labels become exact 32-bit floats.

    Without ``overwrite``, an existing file is kept and ``InputError`` raised (even if it appeared during the write).
    """
    path = Path(path)
    array = _storable(path, array)
    files.make_folder(path.parent)
    files.atomic_write(path, lambda fh: _imwrite(fh, array, axes, spacing, unit), overwrite)
    return path


def _storable(path: Path, array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint32:
        if array.size and array.max() >= 2**24:
            raise InputError(f"{path}: more than 16.7 million labels cannot be stored exactly in an ImageJ TIFF")
        return array.astype(np.float32)
    return array


def _imwrite(fh: BinaryIO, array: np.ndarray, axes: str | None, spacing, unit: str | None) -> None:
    metadata = {"axes": axes} if axes else {}
    options = {}
    if spacing:
        options["resolution"] = (1 / spacing[1], 1 / spacing[0])
        metadata["unit"] = unit or "micron"
    tifffile.imwrite(fh, array, imagej=True, metadata=metadata, **options)


# ------------------------------------------------------------------------------------------- Tissue Analyzer


def ta_mask_path(image_path: os.PathLike) -> Path:
    """``dir/img.tif`` (any image suffix, any case) → ``dir/img/handCorrection.tif``."""
    image_path = Path(image_path)
    return image_path.parent / image_path.stem / TA_MASK


def is_ta_file(path: os.PathLike) -> bool:
    """A Tissue Analyzer mask, one of its backups, the marker or synth's ground truth: a file of an image's TA
    folder, not an image."""
    name = Path(path).name.lower()
    mask = name.startswith("handcorrection.") and Path(name).suffix in IMAGE_SUFFIXES
    return mask or name in (MARKER, GROUND_TRUTH.lower())


def is_hand_corrected(mask_path: os.PathLike) -> bool | None:
    """True if a person changed the mask since epyseg-ij wrote it, False if it is untouched, None if unknown.

    Unknown means no usable marker: the mask was made by Tissue Analyzer, EPySeg or by hand, so treat it as precious.
    A mask or marker that is there but cannot be read raises ``InputError``.
    """
    mask_path = Path(mask_path)
    if not files.require_regular(mask_path):
        return None
    recorded = _recorded_sha256(mask_path.parent / MARKER)
    return None if recorded is None else files.sha256(mask_path) != recorded


def _recorded_sha256(marker: Path) -> str | None:
    """The checksum a marker records; None for anything that is not a small JSON object with a SHA-256 in it."""
    if files.kind(marker) != "file":
        return None
    text = files.read_bytes(marker, _MARKER_MAX_BYTES + 1)
    if len(text) > _MARKER_MAX_BYTES:
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):  # invalid JSON or text, huge integers, deep nesting
        return None
    digest = record.get("sha256") if isinstance(record, dict) else None
    return digest if isinstance(digest, str) and _SHA256.fullmatch(digest) else None


@dataclass
class WriteResult:
    """What happened to one output file."""

    path: Path
    written: bool
    message: str = ""
    backup: Path | None = None


def write_ta_mask(
    image_path: os.PathLike,
    outlines: np.ndarray,
    *,
    overwrite: bool = False,
    spacing: tuple[float, float] | None = None,
    unit: str | None = None,
    provenance: dict | None = None,
) -> WriteResult:
    """Write ``handCorrection.tif`` beside an image, following the rules in the module docstring."""
    mask = ta_mask_path(image_path)
    marker = mask.parent / MARKER
    axes = "ZYX" if outlines.ndim == 3 else "YX"
    files.make_folder(mask.parent)
    with files.locked(mask.parent):
        refusal = ta_refusal(mask, overwrite)  # again: another writer may have been here since the caller checked
        if refusal:
            return WriteResult(mask, False, refusal)
        with files.prepared(mask, lambda fh: _imwrite(fh, outlines, axes, spacing, unit)) as new:
            digest = files.sha256(new)
            existed = files.require_regular(mask)
            if existed and files.sha256(mask) == digest:
                return WriteResult(mask, True, "unchanged (the existing mask is the same)")
            record = {"file": TA_MASK, "sha256": digest, "written": datetime.now(UTC).isoformat(timespec="seconds")}
            text = json.dumps({**(provenance or {}), **record}, indent=1, default=str).encode()
            with files.prepared(marker, lambda fh: fh.write(text)) as new_marker:
                backup = files.backup(mask, f"{datetime.now():%Y%m%d-%H%M%S}") if existed else None
                _put_together(new_marker, marker, new, mask, existed)
    return WriteResult(mask, True, f"backed up the old mask as {backup.name}" if backup else "", backup)


def _put_together(new_marker: Path, marker: Path, new_mask: Path, mask: Path, replace_mask: bool) -> None:
    """The marker first, then the mask; the old marker comes back if the mask cannot be put in place.

    If the process dies between the two renames, the new marker does not match the old mask, which is then treated
    as hand-corrected (kept), or there is no mask and a new run writes it: either way nothing is lost.
    """
    old = files.read_bytes(marker) if files.kind(marker) == "file" else None
    files.put(new_marker, marker, overwrite=True)
    try:
        files.put(new_mask, mask, overwrite=replace_mask)
    except BaseException:
        if old is None:
            marker.unlink(missing_ok=True)
        else:
            files.atomic_write(marker, lambda fh: fh.write(old))
        raise


def ta_refusal(mask: Path, overwrite: bool) -> str:
    """Why an existing TA mask must not be replaced ('' if it may be written).

    ``InputError`` if the mask or its marker is not a regular file, or cannot be read.
    """
    folder = files.kind(mask.parent)
    if folder not in (None, "folder"):
        raise InputError(f"{mask.parent} is a {folder}, not a folder: the mask cannot go there (move it away)")
    files.require_regular(mask.parent / MARKER)
    if not files.require_regular(mask):
        return ""
    if not overwrite:
        return f"{mask} exists: kept (use --overwrite to replace it)"
    if is_hand_corrected(mask):
        return f"{mask} was corrected by hand: kept (move it away to segment this image again)"
    return ""


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
