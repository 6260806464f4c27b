"""Cell outlines as ImageJ's wand traces them, and perimeters as ImageJ measures traced ROIs, in numpy (no JVM).

The polygons are ImageJ's own (``ij.gui.Wand`` in 4-connected mode, from the right end of a cell's first run of
pixels): the ROIs epyseg-ij gives ImageJ, and the ones it writes to RoiSet files without ImageJ, are the ROIs
ImageJ would trace itself, and their perimeters are ImageJ's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .errors import InputError

FOUR = ndi.generate_binary_structure(2, 1)
EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class Outline:
    """The outline of one cell: closed rings of pixel-corner vertices ((n, 2) int arrays of x, y in the image).

    One ring is ImageJ's traced ROI of the cell (what the wand gives). A cell with holes, or in several pieces,
    has a ring per piece and per hole; filled even-odd, they cover exactly its pixels.
    """

    label: int
    rings: tuple[np.ndarray, ...]

    @property
    def traced(self) -> bool:
        """True when one traced polygon covers the cell exactly."""
        return len(self.rings) == 1


def outlines(labels: np.ndarray) -> list[Outline]:
    """The outline of every cell of a 2D label image, by ascending label, traced as ImageJ's wand traces them
    (4-connected, from the right end of the cell's first run of pixels), so the polygons are the ones ImageJ makes.

    Examples
    --------
    >>> [ring.tolist() for ring in outlines(np.array([[0, 1, 1], [0, 1, 0]]))[0].rings]
    [[[3, 1], [2, 1], [2, 2], [1, 2], [1, 0], [3, 0]]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise InputError(f"expected a 2D integer label image, got {labels.dtype} of shape {labels.shape}")
    padded = np.pad(labels.astype(np.int64, copy=False), 1)  # a frame of outside pixels: no bounds checks
    flat = padded.ravel()
    ids, first = np.unique(flat, return_index=True)
    ids, first = ids[ids > 0], first[ids > 0]
    counts = np.bincount(flat, minlength=int(ids[-1]) + 1 if ids.size else 1)
    codes = _vertex_codes(padded)
    found = []
    for label, start in zip(ids.tolist(), first.tolist(), strict=True):
        ring = _trace(codes, padded.shape[1], start, eight=False)
        rings = (ring,) if _area(ring) == counts[label] else _rings(padded, label)  # else: holes, or pieces
        found.append(Outline(label, tuple(r - 1 for r in rings)))  # from padded to image coordinates
    return found


def _rings(padded: np.ndarray, label: int) -> tuple[np.ndarray, ...]:
    """Every piece (4-connected) and hole (8-connected) of a cell, each traced as the wand traces it."""
    box = ndi.find_objects((padded == label).astype(np.int8))[0]
    y0, x0 = box[0].start - 1, box[1].start - 1  # the padding frame stays outside
    inside = padded[y0 : box[0].stop + 1, x0 : box[1].stop + 1] == label
    pieces, n_pieces = ndi.label(inside, structure=FOUR)
    gaps, n_gaps = ndi.label(~inside, structure=EIGHT)
    outside = gaps[0, 0]
    regions = [(pieces, i, False) for i in range(1, n_pieces + 1)]
    regions += [(gaps, i, True) for i in range(1, n_gaps + 1) if i != outside]
    rings = []
    for numbered, i, eight in regions:
        start = int(np.argmax(numbered.ravel() == i))
        rings.append(_trace(_vertex_codes(numbered), numbered.shape[1], start, eight) + (x0, y0))
    return tuple(rings)


# The four pixels around a vertex, by the wand's pixel directions: 0 lower right, 1 upper right, 2 upper left, 3 lower
# left (a vertex is the top-left corner of the pixel with its index). A vertex's code has a bit per pair of them
# that hold the same value, so one code serves every region that meets there.
_PAIRS = ((0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (1, 3))


def _vertex_codes(padded: np.ndarray) -> list[int]:
    """The code of every vertex of a padded image (flat, as Python ints for the walk)."""
    flat = padded.ravel()
    width = padded.shape[1]
    n = flat.size
    around = (flat[width + 1 :], flat[1 : n - width], flat[: n - width - 1], flat[width : n - 1])
    codes = np.zeros(n, np.int64)
    for bit, (a, b) in enumerate(_PAIRS):
        codes[width + 1 :] |= (around[a] == around[b]).astype(np.int64) << bit
    return codes.tolist()


def _turns(eight: bool) -> list[list[int]]:
    """The wand's turn (-1 right, 0 straight, +1 left) for each (vertex code, walking direction & 3).

    Walking in direction d (0 right, 1 up, 2 left, 3 down) the inside is on the right, so the pixel behind on the
    right, in pixel direction d - 1, is inside; the others are inside when they hold its value. 4-connected tracing
    turns right as much as possible, 8-connected tracing left.
    """
    same = {frozenset(pair): bit for bit, pair in enumerate(_PAIRS)}
    table = []
    for code in range(1 << len(_PAIRS)):
        row = []
        for d in range(4):
            ref = (d - 1) & 3
            inside = [k == ref or bool(code >> same[frozenset((k, ref))] & 1) for k in range(4)]
            ahead, left = inside[d], inside[(d + 1) & 3]
            if eight:
                row.append(1 if left else 0 if ahead else -1)
            else:
                row.append(-1 if not ahead else 0 if not left else 1)
        table.append(row)
    return table


_TURNS = {False: _turns(False), True: _turns(True)}


def _trace(codes: list[int], width: int, start: int, eight: bool) -> np.ndarray:
    """ImageJ's wand (``ij.gui.Wand.traceEdge``) around the region whose first pixel in raster order has the flat
    index ``start``, in an image of ``width`` px whose border pixels are outside: its corners, (n, 2) x, y.
    """
    turns = _TURNS[eight]
    step = (1, -width, -1, width)  # right, up, left, down
    v = start
    while codes[v + 1] & 0b1000:  # pixel v + 1 holds what pixel v holds (lower right and left of vertex v + 1)
        v += 1  # along the first run
    v += 1 + width  # the lower end of the edge between the run's last pixel and the outside pixel after it
    first, direction = v, 3  # walk down that edge, the outside on the left (as the wand always walks)
    corners = []
    while True:
        turn = turns[codes[v]][direction & 3]
        if turn:
            corners.append(v)
            direction += turn
        v += step[direction & 3]
        if v == first and direction & 3 == 3:
            break
    if corners[0] % width != v % width:  # the start is a corner too
        corners.append(v)
    at = np.array(corners, np.int64)
    return np.stack([at % width, at // width], axis=1)


def _area(ring: np.ndarray) -> int:
    """The area enclosed by a ring (shoelace formula), in pixels."""
    x, y = ring[:, 0], ring[:, 1]
    twice = int(np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:])) + int(x[-1] * y[0] - y[-1] * x[0])
    return abs(twice) // 2


def perimeters(cell_outlines: list[Outline], spacing: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Each cell's perimeter in calibrated units: ImageJ's perimeter of its traced ROI (``PolygonRoi.getLength``:
    straight edges count 1, corners √2), summed over the rings of a cell with holes or in pieces.

    ImageJ counts the corners that do not follow another counted corner: walking the sides from the one that ends
    at the first vertex, a long side (over 1 px) always ends at a counted corner, and in a run of 1-px sides every
    second one does (every first one, for a run at the start of the walk).

    Examples
    --------
    >>> pixel = Outline(1, (np.array([[1, 0], [0, 0], [0, 1], [1, 1]]),))  # one pixel: 4 - 2 (2 - √2)
    >>> perimeters([pixel]).round(4).tolist()
    [2.8284]
    """
    rings = [ring for o in cell_outlines for ring in o.rings]
    if not rings:
        return np.zeros(0)
    owner = np.repeat(np.arange(len(cell_outlines)), [len(o.rings) for o in cell_outlines])
    sizes = np.array([len(r) for r in rings])
    ends = np.cumsum(sizes)
    starts = ends - sizes
    vertices = np.concatenate(rings)
    previous = np.arange(len(vertices)) - 1
    previous[starts] = ends - 1  # the side that ends at a ring's first vertex starts at its last
    steps = np.abs(vertices - vertices[previous])
    unit = steps.sum(axis=1) == 1
    ring_of = np.repeat(np.arange(len(rings)), sizes)
    at_start = np.zeros(len(vertices), bool)
    at_start[starts] = True
    run_start = unit & (at_start | ~np.roll(unit, 1))
    run = np.cumsum(run_start) - 1
    run_length = np.bincount(run[unit], minlength=int(run_start.sum()))
    first_run = at_start[run_start]  # a run that begins the walk counts its first side too
    run_corners = np.where(first_run, (run_length + 1) // 2, run_length // 2)
    corners = np.bincount(ring_of[~unit], minlength=len(rings)).astype(np.float64)
    corners += np.bincount(ring_of[run_start], weights=run_corners, minlength=len(rings))
    corners[sizes < 4] = 0
    h, w = spacing
    sum_dx = np.bincount(ring_of, weights=steps[:, 0], minlength=len(rings))
    sum_dy = np.bincount(ring_of, weights=steps[:, 1], minlength=len(rings))
    lengths = np.where(sizes < 4, 0.0, sum_dx * w + sum_dy * h - corners * ((w + h) - np.sqrt(w * w + h * h)))
    return np.bincount(owner, weights=lengths, minlength=len(cell_outlines))
