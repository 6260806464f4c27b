"""Files: read images, write ImageJ TIFFs atomically, and the Tissue Analyzer folder layout and its safety rules.

Tissue Analyzer (TA) keeps the segmentation of ``dir/img.tif`` in ``dir/img/handCorrection.tif`` (8-bit, 255 on
1-px boundaries). That file may hold hours of hand correction, so:

- every write goes to a temporary file that is renamed into place: an interrupted run leaves no half-written file;
- beside each mask it writes, epyseg-ij leaves a marker ``epyseg_ij.json`` with the mask's checksum, so it can tell
  its own untouched output from a mask a person has corrected since (``is_hand_corrected``);
- an existing mask is never replaced unless asked (``overwrite``), never when it was hand-corrected, and is backed
  up with a time stamp before it is replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import tifffile

from .errors import InputError

TA_MASK = "handCorrection.tif"
MARKER = "epyseg_ij.json"
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".lsm")


@dataclass
class Image:
    """Pixels with what ImageJ knows about them."""

    array: np.ndarray
    axes: str  # tifffile letters, e.g. "YX", "ZYX", "TZCYX", "YXS" (S = RGB samples)
    spacing: tuple[float, float] | None = None  # pixel height and width in `unit`
    unit: str | None = None


def read_image(path: os.PathLike) -> Image:
    """Read a TIFF (ImageJ hyperstacks, OME, LSM) or a PNG/JPEG/BMP; one clear error for anything unusable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        if path.suffix.lower() in (".tif", ".tiff", ".lsm"):
            return _read_tiff(path)
        from skimage import io as skio

        array = np.asarray(skio.imread(path))
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"{path}: not a readable image ({_first_line(error)})") from None
    axes = "YX" if array.ndim == 2 else "YXS" if array.ndim == 3 else ""
    if not axes:
        raise InputError(f"{path}: unsupported image shape {array.shape}")
    return Image(array, axes)


def _read_tiff(path: Path) -> Image:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes
        page = series.pages[0]
        unit = (tif.imagej_metadata or {}).get("unit")
        spacing = None
        tags = page.tags
        if unit not in (None, "", "pixel", "pixels") and "XResolution" in tags and "YResolution" in tags:
            (xn, xd), (yn, yd) = tags["XResolution"].value, tags["YResolution"].value
            spacing = (yd / yn, xd / xn) if xn and yn else None
    return Image(array, axes.replace("I", "Z").replace("Q", "Z"), spacing, unit if spacing else None)


def write_tiff(
    path: os.PathLike,
    array: np.ndarray,
    *,
    axes: str | None = None,
    spacing: tuple[float, float] | None = None,
    unit: str | None = None,
) -> Path:
    """Write an ImageJ TIFF atomically (temporary file, then rename); uint32 labels become exact 32-bit floats."""
    path = Path(path)
    if array.dtype == np.uint32:
        if array.size and array.max() >= 2**24:
            raise InputError(f"{path}: more than 16.7 million labels cannot be stored exactly in an ImageJ TIFF")
        array = array.astype(np.float32)
    metadata = {"axes": axes} if axes else {}
    options = {}
    if spacing:
        options["resolution"] = (1 / spacing[1], 1 / spacing[0])
        metadata["unit"] = unit or "micron"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tifffile.imwrite(tmp, array, imagej=True, metadata=metadata, **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ------------------------------------------------------------------------------------------- Tissue Analyzer


def ta_mask_path(image_path: os.PathLike) -> Path:
    """``dir/img.tif`` → ``dir/img/handCorrection.tif``."""
    image_path = Path(image_path)
    return image_path.parent / image_path.stem / TA_MASK


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_hand_corrected(mask_path: os.PathLike) -> bool | None:
    """True if a person changed the mask since epyseg-ij wrote it, False if it is untouched, None if unknown.

    Unknown means no marker: the mask was made by Tissue Analyzer, EPySeg or by hand, so treat it as precious.
    """
    mask_path = Path(mask_path)
    marker = mask_path.parent / MARKER
    if not mask_path.is_file() or not marker.is_file():
        return None
    try:
        recorded = json.loads(marker.read_text())["sha256"]
    except (ValueError, KeyError, TypeError):
        return None
    return sha256(mask_path) != recorded


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
    refusal = ta_refusal(mask, overwrite)
    if refusal:
        return WriteResult(mask, False, refusal)
    backup = None
    if mask.exists():
        backup = mask.with_name(f"handCorrection.{datetime.now():%Y%m%d-%H%M%S}.tif")
        shutil.copy2(mask, backup)
    axes = "ZYX" if outlines.ndim == 3 else "YX"
    write_tiff(mask, outlines, axes=axes, spacing=spacing, unit=unit)
    marker = {
        "file": TA_MASK,
        "sha256": sha256(mask),
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        **(provenance or {}),
    }
    tmp = mask.parent / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, indent=1))
    os.replace(tmp, mask.parent / MARKER)
    return WriteResult(mask, True, f"backed up the old mask as {backup.name}" if backup else "", backup)


def ta_refusal(mask: Path, overwrite: bool) -> str:
    """Why an existing TA mask must not be replaced ('' if it may be written)."""
    if not mask.exists():
        return ""
    if not overwrite:
        return f"{mask} exists: kept (use --overwrite to replace it)"
    if is_hand_corrected(mask):
        return f"{mask} was corrected by hand: kept (move it away to segment this image again)"
    return ""


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
