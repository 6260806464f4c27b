"""EPySeg-style training targets: seven binary maps derived from a 1-px outline mask.

Channels (see ``docs`` / research notes, EPySeg §2):

====  =====================================================================
0     the 1-px boundaries themselves
1     channel 0 dilated once with a 4-connected cross (about 3 px wide)
2     channel 1 dilated once more (about 5 px wide)
3     not channel 1 (cell interiors)
4     not channel 2
5     seeds: one compact blob near the centre of every cell
6     not channel 5
====  =====================================================================

A seed is the set of cell pixels whose *axis depth* (distance to the cell's edge along its row plus the distance
along its column) is at least the cell's largest axis depth minus ``SEED_DEPTH * sqrt(area)``; when that set falls apart
only its largest piece is kept. The image border counts as a cell edge.

Targets are small: the seven bits of a pixel are packed into one uint8 (bit ``k`` = channel ``k``; bit 7 marks
pixels to ignore, where a partial annotation says nothing), which is the
form kept in memory and in the cache (``models.home() / "targets"``, keyed by a hash of the outline mask). Nothing
is ever written next to the user's data.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .postprocess import FOUR, labels_from_outlines

log = logging.getLogger(__name__)

N_CHANNELS = 7
# EPySeg states its rule with 0.3 and its seeds cover 12.8 % of a Voronoi tissue of 184 cells in 384^2 px; with
# the axis depth defined here, 0.3 gives 16.8 % on such a tissue and 0.25 gives 12.6 %, so 0.25 is used: what the
# pretrained network learnt to draw is the area, not the constant.
SEED_DEPTH = 0.25
VERSION = 1  # bump when the definition changes: old cache entries are then ignored
_BITS = (1 << np.arange(N_CHANNELS)).astype(np.uint8)
IGNORE_BIT = np.uint8(1 << 7)  # beside the seven targets: a pixel that gets no loss (partial annotations)


def epyseg_targets(outlines: np.ndarray) -> np.ndarray:
    """The seven EPySeg target maps of an outline mask.

    Parameters
    ----------
    outlines : (H, W) array
        Non-zero on 1-px boundaries (8-connected lines); cells are the 4-connected regions of 0.

    Returns
    -------
    targets : (H, W, 7) uint8
        0/1 maps, channels as in the module docstring.

    Examples
    --------
    >>> outlines = np.zeros((5, 7), np.uint8)
    >>> outlines[:, 3] = 255  # two cells side by side
    >>> epyseg_targets(outlines)[2, :, :3].T  # channels 0-2 along the middle row
    array([[0, 0, 0, 1, 0, 0, 0],
           [0, 0, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 1, 1, 0]], dtype=uint8)
    """
    return unpack(packed_targets(outlines))


def packed_targets(outlines: np.ndarray) -> np.ndarray:
    """Like ``epyseg_targets`` with the seven 0/1 maps packed into the bits of one uint8 per pixel.

    Examples
    --------
    >>> packed_targets(np.zeros((2, 2), np.uint8))  # one cell, no boundary: channels 3, 4 and 5 everywhere
    array([[56, 56],
           [56, 56]], dtype=uint8)
    """
    if outlines.ndim != 2:
        raise ValueError(f"outlines must be 2D, got shape {outlines.shape}")
    return pack(outlines != 0, seeds(outlines))


def pack(bonds: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Packed targets from the boundary map (channel 0) and the seed map (channel 5), both bool (H, W)."""
    thick = dilate_cross(bonds)
    thicker = dilate_cross(thick)
    maps = (bonds, thick, thicker, ~thick, ~thicker, seed, ~seed)
    packed = np.zeros(bonds.shape, np.uint8)
    for bit, channel in zip(_BITS, maps, strict=True):
        packed[channel] |= bit
    return packed


def unpack(packed: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """(..., 7) 0/1 maps from packed targets (``packed_targets``), as ``dtype``."""
    return ((packed[..., np.newaxis] & _BITS) != 0).astype(dtype)


def with_weights(packed: np.ndarray) -> np.ndarray:
    """(..., 8) float32: the seven 0/1 targets and, last, the loss weight (0 where ``IGNORE_BIT`` is set, else 1)."""
    out = np.empty((*packed.shape, N_CHANNELS + 1), np.float32)
    out[..., :N_CHANNELS] = unpack(packed, np.float32)
    out[..., N_CHANNELS] = (packed & IGNORE_BIT) == 0
    return out


def dilate_cross(mask: np.ndarray) -> np.ndarray:
    """Binary dilation by the 4-connected 3x3 cross (EPySeg's grey dilation on 0/255 masks)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def seeds(outlines: np.ndarray, depth: float = SEED_DEPTH) -> np.ndarray:
    """One central blob per cell of an outline mask (target channel 5).

    Parameters
    ----------
    outlines : (H, W) array, non-zero on boundaries.
    depth : float
        Seed pixels are at most ``depth * sqrt(area)`` shallower than the cell's deepest pixel.

    Returns
    -------
    seeds : (H, W) bool
    """
    labels = labels_from_outlines(outlines).astype(np.int32)
    n = int(labels.max())
    if n == 0:
        return np.zeros(outlines.shape, bool)
    axis_depth = _axis_distance(labels > 0, 0) + _axis_distance(labels > 0, 1)
    index = np.arange(1, n + 1)
    deepest = np.zeros(n + 1, np.float32)
    deepest[1:] = ndi.maximum(axis_depth, labels, index)
    area = np.bincount(labels.ravel(), minlength=n + 1).astype(np.float32)
    floor = deepest - depth * np.sqrt(area)
    candidate = (labels > 0) & (axis_depth >= floor[labels])
    return _largest_piece_per_cell(candidate, labels)


def _axis_distance(inside: np.ndarray, axis: int) -> np.ndarray:
    """Distance of every ``inside`` pixel to the nearest outside pixel along ``axis`` (the border is outside)."""
    padded = np.pad(inside, 1)
    # An anisotropic EDT whose other axis is 'infinitely' long measures distances within lines only; the padding
    # guarantees every line has an outside pixel.
    sampling = [float(padded.shape[axis] + 1) * 4] * 2
    sampling[axis] = 1.0
    dist = ndi.distance_transform_edt(padded, sampling=sampling)
    return dist[1:-1, 1:-1].astype(np.float32)


def _largest_piece_per_cell(candidate: np.ndarray, labels: np.ndarray) -> np.ndarray:
    pieces, n = ndi.label(candidate, structure=FOUR)
    if n == 0:
        return candidate
    cell = np.asarray(ndi.maximum(labels, pieces, np.arange(1, n + 1)))  # a piece lies in one cell
    size = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    order = np.lexsort((-size, cell))  # by cell, largest piece first
    keep = np.zeros(n + 1, bool)
    keep[1 + order[np.r_[True, cell[order][1:] != cell[order][:-1]]]] = True
    return keep[pieces]


# --------------------------------------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where packed targets are cached: ``models.home() / "targets"``."""
    from . import models

    return models.home() / "targets"


def cached_packed_targets(outlines: np.ndarray, cache: bool = True) -> np.ndarray:
    """``packed_targets`` through a cache keyed by the content of ``outlines`` (computed on a miss).

    The cache lives in ``cache_dir()``; a write that fails (read-only or full disk) only logs a warning.
    """
    if not cache:
        return packed_targets(outlines)
    bonds = np.ascontiguousarray(outlines != 0)
    digest = hashlib.sha256(f"v{VERSION}:{bonds.shape}".encode())
    digest.update(np.packbits(bonds).tobytes())
    path = cache_dir() / f"{digest.hexdigest()[:32]}.npy"
    try:
        packed = np.load(path)
        if packed.shape == bonds.shape and packed.dtype == np.uint8:
            return packed
    except (OSError, ValueError):
        pass
    packed = packed_targets(bonds)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.save(f, packed)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as error:
        log.warning("could not cache training targets in %s: %s", path.parent, error)
    return packed
