"""From decoded network maps to cells, band by band on all CPU cores, in bounded memory.

A plane is cut into bands of rows, each seen with ``MARGIN`` rows of context above and below: more than a cell's
diameter, so a band's result does not depend on where it was cut. Per-band steps run in parallel threads (the
watershed, labelling and numpy release the GIL); the few whole-plane steps (numbering markers and cells) work in
place on one int32 buffer. Beside the inputs and outputs, memory holds one band's temporaries per thread.

Steps: markers per band → marker numbers (whole plane) → watershed per band → merge regions whose interface the
network does not see → 1-px outlines per band → cell numbers (whole plane) → optional small-cell merge.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage as ndi

from . import postprocess

BAND_PIXELS = 4_000_000  # pixels per band, context excluded
MARGIN = 128  # rows of context above and below a band
WEAK_INTERFACE = 0.5  # neighbour regions whose interface has a mean bond value below this are one cell
# Chosen on synthetic images of the default model's training styles (mean segmentation quality 0.879 without the
# merge, 0.879 / 0.880 / 0.881 at 0.3 / 0.4 / 0.5), not on the evaluation sets.

Band = tuple[int, int, int, int]  # start, stop (the rows it owns), low, high (the rows it sees)


def find_cells(
    bonds: np.ndarray,
    code: np.ndarray,
    min_size: int = 0,
    merge_below: float | None = WEAK_INTERFACE,
    workers: int | None = None,
):
    """Outlines (uint8) and labels (uint16/uint32) of a plane from its bond map and per-pixel code.

    ``code`` carries ``postprocess.INTERIOR``/``SEED`` bits (markers are chosen here) or ready ``MARKER`` bits; it is
    consumed (overwritten). Neighbour regions whose interface has a mean bond value below ``merge_below`` are merged
    (None: never). Cells below ``min_size`` px lose their marker and are merged into a neighbour.
    """
    bands = split_rows(*bonds.shape, workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=min(len(bands), workers or os.cpu_count() or 1)) as pool:

        def each(step, *args) -> list:
            return list(pool.map(lambda band: step(band, *args), bands))

        each(_mark, code)
        np.right_shift(code, 2, out=code)  # keep the MARKER bit only: code is now a 0/1 marker mask
        numbers = np.empty(bonds.shape, np.int32)
        while True:
            n = ndi.label(code, structure=postprocess.FOUR, output=numbers)
            if n == 0:
                return np.zeros(bonds.shape, np.uint8), np.zeros(bonds.shape, np.uint16)
            each(_flood, bonds, code, numbers)
            if merge_below is not None:
                parts = each(_interfaces, bonds, numbers, n)
                table = postprocess.merge_table(*_sum_interfaces(parts), n, merge_below)
                each(_relabel, numbers, table)
            outlines = np.empty(bonds.shape, np.uint8)
            each(_outline, bonds, numbers, outlines)
            np.invert(outlines, out=outlines)  # cells non-zero for ndi.label, without a full-size temporary
            n = ndi.label(outlines, structure=postprocess.FOUR, output=numbers)
            np.invert(outlines, out=outlines)
            small = np.sum(each(_areas, numbers, n), axis=0) < min_size if min_size > 0 else None
            if small is None or not small[1:].any():
                return outlines, postprocess.compact_labels(numbers, n)
            small[0] = False
            each(_unmark, code, numbers, small)
            min_size = 0  # one round: merged cells are not examined again


def split_rows(height: int, width: int, workers: int = 1) -> list[Band]:
    """Bands of rows with their context: at least one per worker, each of about ``BAND_PIXELS`` pixels.

    Examples
    --------
    >>> split_rows(1000, 1000, workers=1)
    [(0, 1000, 0, 1000)]
    >>> split_rows(1000, 1000, workers=2)
    [(0, 500, 0, 628), (500, 1000, 372, 1000)]
    """
    count = max(workers if height >= 4 * MARGIN else 1, math.ceil(height * width / BAND_PIXELS))
    count = min(count, max(1, height // 16))
    edges = [round(i * height / count) for i in range(count + 1)]
    return [(a, b, max(0, a - MARGIN), min(height, b + MARGIN)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _mark(band: Band, code: np.ndarray) -> None:
    start, stop, low, high = band
    markers = postprocess.choose_markers(code[low:high] & (postprocess.INTERIOR | postprocess.SEED))
    code[start:stop] |= markers[start - low : stop - low].view(np.uint8) * np.uint8(postprocess.MARKER)


def _flood(band: Band, bonds: np.ndarray, code: np.ndarray, numbers: np.ndarray) -> None:
    """Watershed of one band. Its context rows may be flooded meanwhile by a neighbour band, but a marker pixel keeps
    its number in any flood, and only marker pixels are read."""
    start, stop, low, high = band
    markers = numbers[low:high] * code[low:high]
    numbers[start:stop] = postprocess.flood(bonds[low:high], markers)[start - low : stop - low]


def _interfaces(band: Band, bonds: np.ndarray, numbers: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    start, stop, _, _ = band
    return postprocess.interfaces(numbers, bonds, n, slice(start, stop))


def _sum_interfaces(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    keys, inverse = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    sums = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]))
    counts = np.bincount(inverse, weights=np.concatenate([p[2] for p in parts]))
    return keys, sums, counts


def _relabel(band: Band, numbers: np.ndarray, table: np.ndarray) -> None:
    start, stop, _, _ = band
    numbers[start:stop] = table[numbers[start:stop]]


def _outline(band: Band, bonds: np.ndarray, numbers: np.ndarray, outlines: np.ndarray) -> None:
    start, stop, low, high = band
    lines = postprocess.outlines_from_regions(numbers[low:high], bonds[low:high])
    outlines[start:stop] = lines[start - low : stop - low]


def _areas(band: Band, numbers: np.ndarray, n: int) -> np.ndarray:
    start, stop, _, _ = band
    return np.bincount(numbers[start:stop].ravel(), minlength=n + 1)


def _unmark(band: Band, code: np.ndarray, numbers: np.ndarray, small: np.ndarray) -> None:
    start, stop, _, _ = band
    code[start:stop][small[numbers[start:stop]]] = 0
