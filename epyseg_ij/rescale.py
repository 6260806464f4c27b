"""Large cells: a plane whose cells are larger than the network handles well is segmented again at a reduced size.

The default network finds cells best at about 20-40 px across. On the held-out synthetic style drawn at larger
magnifications, segmenting at half size lost 0.03 SEG where a first pass found a median cell diameter of 35 px and
gained from about 40 px on; with the default's ``max_cell_diameter`` of 40 px, ``bench/cell_size.py`` measures
0.936 -> 0.960 at 42 px, 0.865 -> 0.926 at 53 px and 0.386 -> 0.888 at 83 px, and nothing changes at 27 px or on
the real sets. So where the card sets ``max_cell_diameter`` and a first pass finds larger cells, the plane is shrunk
by the smallest power of 2 that brings them under it and segmented, and its cells are found again at full size:
markers from the shrunk plane's cells, the bond map upsampled, the faint-interface merge on the full-size image.
Outlines stay 1 px wide at full size.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from . import kernels

MAX_REDUCTION = 8  # never shrink a plane more than this


def median_diameter(labels: np.ndarray) -> float:
    """The diameter (px) of a disk of the median cell area; 0 without cells."""
    areas = kernels.histogram(labels, int(labels.max(initial=0)) + 1)[1:]
    areas = areas[areas > 0]
    return float(2 * math.sqrt(np.median(areas) / math.pi)) if areas.size else 0.0


def reduction(diameter: float, largest: float) -> int:
    """1, or the power of 2 (up to ``MAX_REDUCTION``) by which to shrink a plane whose median cell is ``diameter``
    px across so that it falls to ``largest`` px or below.

    >>> labels = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 60, 0), 60, 1)  # cells of 60 x 60 px
    >>> reduction(median_diameter(labels), 40.0), reduction(median_diameter(labels), 80.0), reduction(500.0, 40.0)
    (2, 1, 8)
    """
    if diameter <= largest:
        return 1
    return min(MAX_REDUCTION, 2 ** math.ceil(math.log2(diameter / largest)))


def shrink(plane: np.ndarray, factor: int) -> np.ndarray:
    """``plane`` (2D) reduced ``factor`` times in both axes (area-averaged, float32)."""
    from skimage.transform import resize

    shape = tuple(max(1, -(-n // factor)) for n in plane.shape)
    return resize(plane.astype(np.float32, copy=False), shape, order=1, anti_aliasing=True, preserve_range=True)


def grow_bonds(bonds: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bond map of a shrunk plane brought back to ``shape`` (bilinear, float32 in [0, 1])."""
    from skimage.transform import resize

    return np.clip(resize(bonds, shape, order=1, preserve_range=True), 0, 1).astype(np.float32)


def grow_markers(labels: np.ndarray, shape: tuple[int, int], factor: int) -> np.ndarray:
    """Watershed markers at ``shape`` from the cells of a shrunk plane: each cell, scaled up, less a rim of
    ``factor`` px so that neighbours never touch; bit-packed along rows as ``cells.choose_markers`` gives them."""
    rows = np.minimum(np.arange(shape[0]) // factor, labels.shape[0] - 1)
    cols = np.minimum(np.arange(shape[1]) // factor, labels.shape[1] - 1)
    grown = labels[np.ix_(rows, cols)]
    size = 2 * factor + 1
    same = ndi.maximum_filter(grown, size=size) == ndi.minimum_filter(grown, size=size)
    return np.packbits((grown > 0) & same, axis=1)
