"""Masks: read an outline mask or a label image and turn it into a 1-px outline mask, refusing masks without cells.

A mask is an outline mask (non-zero on boundaries, zero in cells; thicker lines are thinned to 1 px, Tissue
Analyzer's 1-px frame is removed) or a label image (one integer per cell; zero is either a region of its own or, when
it only forms thin lines, the boundaries). A mask that holds fewer than 2 cells (every pixel the same, only a frame)
raises ``NoCells``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from . import io
from .errors import InputError
from .postprocess import labels_from_outlines, outlines_from_regions

LABEL_MAX_CHANGE = 0.3  # a label image changes value between at most this fraction of 4-adjacent pixel pairs


class NoCells(InputError):
    """A mask that holds no cells (uniform, or only a frame): nothing to learn from it."""


def read_mask(path: Path) -> np.ndarray:
    """A mask file as a 1-px outline mask (uint8, 255 on boundaries); see ``outlines_from_mask``."""
    array = io.read_image(path).array
    if array.ndim == 3 and array.shape[-1] in (3, 4) and is_grey(array):
        array = array[..., 0]
    return outlines_from_mask(np.squeeze(array), str(path))


def is_grey(array: np.ndarray) -> bool:
    """An RGB(A) array whose colour channels are equal."""
    return array.shape[-1] in (3, 4) and bool(
        (array[..., 0] == array[..., 1]).all() and (array[..., 0] == array[..., 2]).all()
    )


def outlines_from_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """Turn an outline mask or a label image into a 1-px outline mask.

    Parameters
    ----------
    mask : (H, W) array
        Binary outline mask (non-zero on boundaries, possibly thicker than 1 px, possibly with Tissue Analyzer's
        1-px frame) or label image (one integer per cell).
    name : str
        For error messages.

    Returns
    -------
    outlines : (H, W) uint8, 255 on 1-px boundaries (8-connected lines), cells are the 4-connected regions of 0.

    Raises
    ------
    NoCells
        The mask holds fewer than 2 cells (uniform, all zero, only a frame).
    InputError
        The mask is not 2D, is mostly boundary, or is neither a binary mask nor a label image.

    Examples
    --------
    >>> outlines_from_mask(np.array([[1, 1, 2, 2], [1, 1, 2, 2]]))
    array([[  0, 255,   0,   0],
           [  0, 255,   0,   0]], dtype=uint8)
    """
    if mask.ndim != 2:
        raise InputError(f"{name}: a mask must be a 2D image, got shape {mask.shape}")
    if mask.dtype.kind not in "buif":
        raise InputError(f"{name}: unsupported mask type {mask.dtype}")
    if mask.dtype.kind == "f" and not np.all(np.isfinite(mask) & (mask == np.round(mask))):
        raise InputError(f"{name} is neither a binary outline mask nor a label image (it has fractional values)")
    values = np.unique(mask)
    if len(values) == 1:
        empty = "is empty (every pixel is 0)" if values[0] == 0 else f"is uniform (every pixel is {values[0]})"
        raise NoCells(f"{name} {empty}: it holds no cells and no boundaries to learn from")
    binary = len(values) == 2 and values[0] == 0
    outlines = _binary_outlines(mask != 0, name) if binary else _label_outlines(mask, name, len(values))
    cells = int(labels_from_outlines(outlines).max())
    if cells < 2:
        raise NoCells(f"{name} holds {cells} cell(s) once read as outlines: at least 2 are needed to learn boundaries")
    return outlines


def _binary_outlines(bonds: np.ndarray, name: str) -> np.ndarray:
    bonds = _without_frame(bonds)
    if not bonds.any():
        raise NoCells(f"{name} holds only Tissue Analyzer's frame: no cells and no boundaries to learn from")
    if bonds.mean() > 0.5:
        raise InputError(
            f"{name} is mostly white ({bonds.mean():.0%}): outline masks need white boundaries on black cells"
        )
    return _thin(bonds)


def _label_outlines(mask: np.ndarray, name: str, levels: int) -> np.ndarray:
    if not _looks_like_labels(mask):
        raise InputError(
            f"{name} is neither a binary outline mask nor a label image ({levels} grey levels that change "
            "between most neighbouring pixels): give white boundaries on black, or one integer per cell"
        )
    zero = mask == 0
    if zero.any() and not ndi.binary_erosion(zero, np.ones((3, 3), bool)).any():
        return _thin(zero)  # label image whose zeros are boundary lines (a watershed with lines)
    return outlines_from_regions(mask)


def _looks_like_labels(mask: np.ndarray) -> bool:
    """Piecewise constant: neighbouring pixels mostly share their value (microscope images do not)."""
    change = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    pairs = (mask.shape[0] - 1) * mask.shape[1] + mask.shape[0] * (mask.shape[1] - 1)
    return change <= LABEL_MAX_CHANGE * max(pairs, 1)


def _without_frame(bonds: np.ndarray) -> np.ndarray:
    """Remove a 1-px frame of boundary all around the image (Tissue Analyzer draws one) by copying inner pixels."""
    if min(bonds.shape) < 4 or not (bonds[0].all() and bonds[-1].all() and bonds[:, 0].all() and bonds[:, -1].all()):
        return bonds
    bonds = bonds.copy()
    bonds[0], bonds[-1] = bonds[1], bonds[-2]
    bonds[:, 0], bonds[:, -1] = bonds[:, 1], bonds[:, -2]
    return bonds


def _thin(bonds: np.ndarray) -> np.ndarray:
    """1-px outlines from a boundary map: unchanged if already 1 px wide, otherwise re-drawn along line centres."""
    square = bonds[:-1, :-1] & bonds[1:, :-1] & bonds[:-1, 1:] & bonds[1:, 1:]
    if not square.any():
        return bonds.view(np.uint8) * np.uint8(255)
    labels = labels_from_outlines(bonds).astype(np.int32)
    if not labels.any():
        raise InputError("the mask holds no cells: it is boundary everywhere")
    centre = ndi.distance_transform_edt(bonds)  # deepest inside thick lines
    _, (iy, ix) = ndi.distance_transform_edt(labels == 0, return_indices=True)
    return outlines_from_regions(labels[iy, ix], bonds=centre)
