"""Pixel loops compiled by numba, for the steps that numpy and scipy do slowly: they release the GIL, so tiles run
in parallel on threads. The compiled code is cached on disk: only the first run on a machine compiles it (seconds).

``flood_levels``: a seeded watershed on 256 levels with a bucket queue. Pixels are flooded in order of (level,
order of arrival), as in a priority-queue watershed: each level's bucket is a first-in first-out segment of one
array, so the queue costs O(1) a pixel instead of a heap's O(log n).
``histogram``: how many pixels hold each value of an image or label image, without ``np.bincount``'s 8-byte copy.
``thin``: boundary pixels that separate nothing given back to their cell (1-px lines).
``interface_sums``: the evidence along every interface between two regions, in one pass and without a sort of
the pixel pairs.
"""

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def flood_levels(levels: np.ndarray, labels: np.ndarray) -> None:
    """Give, in place, every 0 of ``labels`` (int32, 2D, C order) that a 4-connected path reaches from a labelled
    pixel the label that floods it first when ``levels`` (uint8, same shape and order) fills from its lowest up."""
    height, width = labels.shape
    flat_levels = levels.ravel()
    flat = labels.ravel()
    # Each pixel enters the queue once, in the bucket of its own level: bucket b is the segment of ``queue`` that
    # starts after the pixels of the levels below b and is as long as the number of pixels at level b; ``head`` and
    # ``tail`` move along it.
    below = np.zeros(257, np.int64)
    for i in range(flat_levels.size):
        below[flat_levels[i] + 1] += 1
    tail = np.cumsum(below)[:256]
    head = tail.copy()
    queue = np.empty(flat.size, np.int64)
    lowest = 256
    # Labelled pixels with an unlabelled 4-neighbour start the flood, last pixel first: which of two pixels of one
    # level goes first is arbitrary, and this order gave the cells of the heap watershed it replaces on every set
    # of bench/real_quality.py (raster order lost 3 of 495 EpiTools cells there).
    for y in range(height - 1, -1, -1):
        for x in range(width - 1, -1, -1):
            i = y * width + x
            if flat[i] != 0 and (
                (y > 0 and flat[i - width] == 0)
                or (y < height - 1 and flat[i + width] == 0)
                or (x > 0 and flat[i - 1] == 0)
                or (x < width - 1 and flat[i + 1] == 0)
            ):
                lowest = _push(i, flat_levels[i], queue, tail, lowest)
    while lowest < 256:
        i = queue[head[lowest]]
        head[lowest] += 1
        label = flat[i]
        y = i // width
        x = i - y * width
        if y > 0 and flat[i - width] == 0:
            flat[i - width] = label
            lowest = _push(i - width, flat_levels[i - width], queue, tail, lowest)
        if y < height - 1 and flat[i + width] == 0:
            flat[i + width] = label
            lowest = _push(i + width, flat_levels[i + width], queue, tail, lowest)
        if x > 0 and flat[i - 1] == 0:
            flat[i - 1] = label
            lowest = _push(i - 1, flat_levels[i - 1], queue, tail, lowest)
        if x < width - 1 and flat[i + 1] == 0:
            flat[i + 1] = label
            lowest = _push(i + 1, flat_levels[i + 1], queue, tail, lowest)
        while lowest < 256 and head[lowest] == tail[lowest]:
            lowest += 1


@numba.njit(nogil=True, cache=True, inline="always")
def _push(i: int, level: int, queue: np.ndarray, tail: np.ndarray, lowest: int) -> int:
    """Append pixel ``i`` to the bucket of ``level``; returns the lowest non-empty level."""
    queue[tail[level]] = i
    tail[level] += 1
    return min(lowest, level)


@numba.njit(nogil=True, cache=True)
def histogram(values: np.ndarray, levels: int) -> np.ndarray:
    """How many pixels of ``values`` (an unsigned integer array, any layout, values below ``levels``) hold each
    value (int64)."""
    counts = np.zeros(levels, np.int64)
    for value in values.flat:
        if value < 0 or value >= levels:  # numba does not check bounds: a stray value would write anywhere
            raise ValueError("histogram: a value lies outside 0..levels-1")
        counts[value] += 1
    return counts


@numba.njit(nogil=True, cache=True)
def thin(boundary: np.ndarray, ids: np.ndarray) -> None:
    """Give redundant boundary pixels back to their cell, in place, until every boundary pixel separates cells.

    ``boundary`` (bool) and ``ids`` (int32 region numbers, at least 0) are 2D, C order. A boundary pixel is
    redundant when its non-boundary 4-neighbours all belong to one region: it takes that region's number. Pixels
    are examined in checkerboard phases, so two 4-adjacent pixels never change together (which could merge
    cells); after the first phase of each colour only the neighbours of released pixels are examined again. The
    result does not depend on the order within a phase.
    """
    height, width = boundary.shape
    flat_boundary, flat_ids = boundary.ravel(), ids.ravel()
    queued = np.zeros(height * width, np.bool_)
    pending = [np.empty(height * width // 2 + 1, np.int64) for _ in range(2)]
    count = np.zeros(2, np.int64)
    for i in range(height * width):
        if flat_boundary[i]:
            colour = (i // width + i % width) & 1
            pending[colour][count[colour]] = i
            count[colour] += 1
            queued[i] = True
    colour = 0
    while count[0] or count[1]:
        todo, n, other = pending[colour], count[colour], 1 - colour
        count[colour] = 0  # refilled in the next phase only: this one adds pixels of the other colour
        for k in range(n):
            i = todo[k]
            queued[i] = False
            y, x = i // width, i % width
            low, high = np.int64(2**62), np.int64(-1)
            for j, inside in ((i - width, y > 0), (i + width, y < height - 1), (i - 1, x > 0), (i + 1, x < width - 1)):
                if inside and not flat_boundary[j]:
                    low, high = min(low, flat_ids[j]), max(high, flat_ids[j])
            if high < 0 or low != high:
                continue
            flat_boundary[i] = False
            flat_ids[i] = high
            for j, inside in ((i - width, y > 0), (i + width, y < height - 1), (i - 1, x > 0), (i + 1, x < width - 1)):
                if inside and flat_boundary[j] and not queued[j]:
                    pending[other][count[other]] = j
                    count[other] += 1
                    queued[j] = True
        colour = other


@numba.njit(nogil=True, cache=True)
def interface_sums(
    regions: np.ndarray, bonds: np.ndarray, image: np.ndarray, with_image: bool, window: tuple, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each pair ``a < b`` of 4-adjacent labels of ``regions`` (2D, labels 0..n): ``keys = a * (n + 1) + b``
    (sorted) and ``sums`` (3, len(keys)): the summed higher ``bonds`` value of each pixel pair across their
    interface, the number of pairs and, if ``with_image``, the summed higher ``image`` value. Only pairs whose
    first (upper or left) pixel lies in ``window = (y0, y1, x0, x1)`` are counted.

    A region touches few others, so each pair is found by walking the short list of its lower label's partners
    (after trying the last pair found)."""
    height, width = regions.shape
    y0, y1, x0, x1 = window
    first = np.full(n + 1, -1, np.int64)  # per lower label, its newest pair
    lower, upper, after = np.empty(64, np.int64), np.empty(64, np.int64), np.empty(64, np.int64)
    sums = np.zeros((3, 64), np.float64)
    size, last = 0, -1
    for y in range(y0, y1):
        for x in range(x0, x1):
            a = regions[y, x]
            for yy, xx in ((y + 1, x), (y, x + 1)):
                if yy >= height or xx >= width or regions[yy, xx] == a:
                    continue
                lo, hi = min(a, regions[yy, xx]), max(a, regions[yy, xx])
                pair = last if last >= 0 and lower[last] == lo and upper[last] == hi else first[lo]
                while pair >= 0 and upper[pair] != hi:
                    pair = after[pair]
                if pair < 0:
                    if size == upper.size:
                        lower, upper, after, sums = _grown(lower), _grown(upper), _grown(after), _grown(sums)
                    pair, size = size, size + 1
                    lower[pair], upper[pair], after[pair], first[lo] = lo, hi, first[lo], pair
                    sums[:, pair] = 0.0
                last = pair  # pixels along an interface come in runs: the next pair is likely the same
                sums[0, pair] += max(bonds[y, x], bonds[yy, xx])
                sums[1, pair] += 1.0
                if with_image:
                    sums[2, pair] += max(image[y, x], image[yy, xx])
    keys = lower[:size] * np.int64(n + 1) + upper[:size]
    order = np.argsort(keys)
    return keys[order], sums[:, :size][:, order]


@numba.njit(cache=True)
def _grown(array: np.ndarray) -> np.ndarray:
    """``array`` with its last axis twice as long (the new part uninitialised)."""
    shape = array.shape[:-1] + (2 * array.shape[-1],)
    grown = np.empty(shape, array.dtype)
    grown[..., : array.shape[-1]] = array
    return grown
