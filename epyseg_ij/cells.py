"""From decoded network maps to cells, tile by tile on all CPU cores, in bounded memory.

A plane is cut into tiles, each seen with ``MARGIN`` px of context around it: more than a cell's diameter, so a
tile's result hardly depends on where it was cut. Per-tile steps run in parallel threads (the watershed, labelling
and numpy release the GIL); the few whole-plane steps (numbering markers and cells) work in place on one int32
buffer; markers are kept as packed bits. Beside the inputs and outputs, memory holds one tile's temporaries per
thread, whatever the size of the plane.

Steps: markers per tile → marker numbers (whole plane) → watershed per tile → merge regions whose interface the
network does not see → 1-px outlines per tile → cell numbers (whole plane) → optional small-cell merge.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from . import postprocess

TILE_SIDE = 1536  # largest tile side (px), context excluded; a multiple of 8 (markers are packed 8 pixels a byte)
MARGIN = 64  # context around a tile (px): over twice the diameter of most epithelial cells
EVIDENCE_SIGMA = 1.0  # px: the image is smoothed this much before its interfaces are measured
WEAK_INTERFACE = 0.5  # neighbour regions whose interface has a mean bond value below this are one cell
# Chosen on synthetic images of the default model's training styles (mean segmentation quality 0.879 without the
# merge, 0.879 / 0.880 / 0.881 at 0.3 / 0.4 / 0.5), not on the evaluation sets.


@dataclass(frozen=True)
class Tile:
    """The pixels a tile owns (``own``) and sees (``seen``, with context), and ``own`` relative to ``seen``."""

    own: tuple[slice, slice]
    seen: tuple[slice, slice]

    @property
    def inner(self) -> tuple[slice, slice]:
        return tuple(slice(o.start - s.start, o.stop - s.start) for o, s in zip(self.own, self.seen, strict=True))


def choose_markers(code: np.ndarray, workers: int | None = None) -> np.ndarray:
    """The plane's watershed markers, bit-packed along rows (``np.packbits(mask, axis=1)``).

    ``code`` carries ``postprocess.INTERIOR``/``SEED`` bits, from which markers are chosen tile by tile, or ready
    ``MARKER`` bits (the classical baseline); it is overwritten. Packed, the mask takes 1 bit a pixel.
    """
    tiles = split_plane(*code.shape, _workers(workers))
    with _pool(tiles, workers) as each:
        each(_mark, code)
    return np.packbits(code >= postprocess.MARKER, axis=1)


def find_cells(
    bonds: np.ndarray,
    markers: np.ndarray,
    min_size: int = 0,
    merge_below: float | None = WEAK_INTERFACE,
    workers: int | None = None,
    *,
    image: np.ndarray | None = None,
    faint: tuple[float, float] | None = None,
    dark_membranes: bool = False,
):
    """Outlines (uint8) and labels (uint16/uint32) of a plane from its bond map and packed markers.

    ``markers`` (from ``choose_markers``) loses the markers of cells below ``min_size`` px, which merge into a
    neighbour. Neighbour regions whose interface has a mean bond value below ``merge_below`` are merged (None:
    never). With ``image`` (the plane, membranes bright) and ``faint = (contrast, bonds)``, regions are also merged
    across interfaces that are faint in the image and not clear in the network's output (see
    ``postprocess.faint_interfaces``; ``dark_membranes`` for images whose membranes are dark).
    """
    evidence = (image, faint, -1.0 if dark_membranes else 1.0) if image is not None and faint is not None else None
    tiles = split_plane(*bonds.shape, _workers(workers))
    with _pool(tiles, workers) as each:
        numbers = np.empty(bonds.shape, np.int32)
        while True:
            n = ndi.label(_unpack(markers, (slice(None), slice(0, bonds.shape[1]))), postprocess.FOUR, numbers)
            if n == 0:
                return np.zeros(bonds.shape, np.uint8), np.zeros(bonds.shape, np.uint16)
            each(_flood, bonds, markers, numbers)
            if merge_below is not None or evidence is not None:
                table = _merge_table(each(_interfaces, bonds, numbers, n, evidence), n, merge_below, evidence)
                each(_relabel, numbers, table)
            outlines = np.empty(bonds.shape, np.uint8)
            each(_outline, bonds, numbers, outlines)
            np.invert(outlines, out=outlines)  # cells non-zero for ndi.label, without a full-size temporary
            n = ndi.label(outlines, structure=postprocess.FOUR, output=numbers)
            np.invert(outlines, out=outlines)
            areas = np.sum(each(_areas, numbers, n), axis=0) if min_size > 0 else None
            small = areas < min_size if areas is not None else None
            if small is None or not small[1:].any():
                return outlines, postprocess.compact_labels(numbers, n)
            small[0] = False
            small[np.argmax(areas[1:]) + 1] = False  # cells merge into a neighbour: the largest always stays
            each(_unmark, markers, numbers, small)
            min_size = 0  # one round: merged cells are not examined again


@contextmanager
def _pool(tiles: list[Tile], workers: int | None):
    """``each(step, *args)`` runs ``step(tile, *args)`` for every tile on a thread pool and returns the results."""
    with ThreadPoolExecutor(max_workers=min(len(tiles), _workers(workers))) as pool:
        yield lambda step, *args: list(pool.map(lambda tile: step(tile, *args), tiles))


def _workers(workers: int | None) -> int:
    return workers or os.cpu_count() or 1


def split_plane(height: int, width: int, workers: int = 1) -> list[Tile]:
    """Tiles of at most ``TILE_SIDE`` px a side with their context, at least one per worker where the plane allows.

    Column edges fall on multiples of 8, so that tiles own whole bytes of the packed markers.

    Examples
    --------
    >>> [t.own for t in split_plane(1000, 1000, workers=2)]
    [(slice(0, 500, None), slice(0, 1000, None)), (slice(500, 1000, None), slice(0, 1000, None))]
    """
    cols = math.ceil(width / TILE_SIDE)
    rows = max(math.ceil(height / TILE_SIDE), math.ceil(workers / cols) if height >= 4 * MARGIN else 1)
    y_edges = [round(i * height / rows) for i in range(rows + 1)]
    x_edges = [min(width, 8 * round(i * width / cols / 8)) for i in range(cols)] + [width]
    return [
        Tile(
            (slice(y0, y1), slice(x0, x1)),
            (slice(max(0, y0 - MARGIN), min(height, y1 + MARGIN)), slice(max(0, x0 - MARGIN), min(width, x1 + MARGIN))),
        )
        for y0, y1 in zip(y_edges[:-1], y_edges[1:], strict=True)
        for x0, x1 in zip(x_edges[:-1], x_edges[1:], strict=True)
    ]


def _unpack(packed: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    """The bool mask of a window of a row-packed bit mask."""
    rows, cols = window
    first = cols.start // 8
    bits = np.unpackbits(packed[rows, first : -(-cols.stop // 8)], axis=1)
    return bits[:, cols.start - 8 * first : cols.stop - 8 * first].view(bool)


def _mark(tile: Tile, code: np.ndarray) -> None:
    markers = postprocess.choose_markers(code[tile.seen] & (postprocess.INTERIOR | postprocess.SEED))
    code[tile.own] |= markers[tile.inner].view(np.uint8) * np.uint8(postprocess.MARKER)


def _flood(tile: Tile, bonds: np.ndarray, markers: np.ndarray, numbers: np.ndarray) -> None:
    """Watershed of one tile. Its context may be flooded meanwhile by a neighbour tile, but a marker pixel keeps its
    number in any flood, and only marker pixels are read."""
    seeds = numbers[tile.seen] * _unpack(markers, tile.seen)
    numbers[tile.own] = postprocess.flood(bonds[tile.seen], seeds)[tile.inner]


def _interfaces(tile: Tile, bonds: np.ndarray, numbers: np.ndarray, n: int, evidence) -> tuple:
    """Interface sums of a tile and, with image evidence, each region's interior brightness sums (weights 1 - bond)."""
    if evidence is None:
        return postprocess.interfaces(numbers, bonds, n, tile.own), None
    image, _, sign = evidence
    smooth = ndi.gaussian_filter(image[tile.seen], EVIDENCE_SIGMA, output=np.float32)
    if sign < 0:
        np.negative(smooth, out=smooth)
    sums = postprocess.interfaces(numbers[tile.seen], bonds[tile.seen], n, tile.inner, smooth)
    own, weight = numbers[tile.own].ravel(), 1 - bonds[tile.own].ravel()
    inside = smooth[tile.inner].ravel() * weight
    return sums, (np.bincount(own, inside, n + 1), np.bincount(own, weight, n + 1))


def _merge_table(parts: list[tuple], n: int, merge_below: float | None, evidence) -> np.ndarray:
    """The label table that merges, over the whole plane, the interfaces the tiles found weak."""
    keys, inverse = np.unique(np.concatenate([p[0][0] for p in parts]), return_inverse=True)
    sums = [np.bincount(inverse, np.concatenate([p[0][i] for p in parts])) for i in range(1, len(parts[0][0]))]
    weak = [keys[sums[0] < merge_below * sums[1]]] if merge_below is not None else []
    if evidence is not None:
        interior = np.sum([p[1][0] for p in parts], axis=0) / np.maximum(np.sum([p[1][1] for p in parts], axis=0), 1e-6)
        weak.append(postprocess.faint_interfaces(keys, sums[0], sums[1], sums[2], interior, n, *evidence[1]))
    return postprocess.join(np.concatenate(weak), n)


def _relabel(tile: Tile, numbers: np.ndarray, table: np.ndarray) -> None:
    numbers[tile.own] = table[numbers[tile.own]]


def _outline(tile: Tile, bonds: np.ndarray, numbers: np.ndarray, outlines: np.ndarray) -> None:
    outlines[tile.own] = postprocess.outlines_from_regions(numbers[tile.seen], bonds[tile.seen])[tile.inner]


def _areas(tile: Tile, numbers: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(numbers[tile.own].ravel(), minlength=n + 1)


def _unmark(tile: Tile, markers: np.ndarray, numbers: np.ndarray, small: np.ndarray) -> None:
    rows, cols = tile.own
    kept = _unpack(markers, tile.own) & ~small[numbers[tile.own]]
    markers[rows, cols.start // 8 : -(-cols.stop // 8)] = np.packbits(kept, axis=1)
