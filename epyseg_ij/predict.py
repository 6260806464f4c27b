"""Run a network over a 2D plane in tiles: normalise, mirror-pad, batch, test-time augment, stitch.

Tiles start every ``tile`` px and see ``overlap / 2`` px of context on each side (mirror padding at the image
border); the network input is rounded up to a multiple of 32. Each tile's prediction is hard-cropped to its own
``tile`` px, so stitching has no seams beyond the network's receptive field. Results stream out one tile row at a
time: memory is bounded by a row of tiles, not by the image. A plane may be any array that slices into numpy (a
Dask or Zarr array): it is read a band of rows at a time, never whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from skimage import exposure

from . import checks, kernels
from .errors import InputError

TTA_MODES = ("none", "flip", "epyseg")
NORMALIZATIONS = ("minmax", "percentile")
PERCENTILES = (2.0, 99.8)
MIN_TILE, MAX_TILE = 16, 2048  # px
MAX_BATCH = 1024  # tiles per network call
MAX_CALL_PIXELS = 2**24  # pixels per network call (about 16 GB of activations for a VGG16 Linknet)


@dataclass(frozen=True)
class Tiling:
    """Tile size and context (px) and how many tiles go through the network at once.

    ``overlap`` is at most ``tile``; a network call holds at most ``MAX_CALL_PIXELS`` (see ``check_call``).
    """

    tile: int = 256
    overlap: int = 32
    batch: int = 8

    def __post_init__(self):
        check_tiling(self.tile, self.overlap, self.batch, optional=False)

    def check_call(self, shape: tuple[int, int]) -> None:
        """Refuse tilings whose network calls would be too large for a plane of this shape (memory)."""
        margin = self.overlap // 2
        win_h, _ = axis_windows(shape[0], self.tile, margin)
        win_w, xs = axis_windows(shape[1], self.tile, margin)
        pixels = min(self.batch, len(xs)) * win_h * win_w
        if pixels > MAX_CALL_PIXELS:
            raise InputError(
                f"tile={self.tile}, overlap={self.overlap} and batch={self.batch} send {pixels / 1e6:.0f} Mpx to the "
                f"network at once (at most {MAX_CALL_PIXELS / 1e6:.0f} Mpx): use a smaller tile, overlap or batch"
            )


def check_tiling(tile: int | None, overlap: int | None, batch: int, optional: bool = True) -> None:
    """``InputError`` unless tile is in [16, 2048] px, overlap even in [0, tile] and batch in [1, 1024]; with
    ``optional``, a tile or overlap of None (the model's) passes."""
    checks.integer("tile", tile, MIN_TILE, MAX_TILE, optional=optional)
    checks.integer("overlap", overlap, 0, MAX_TILE if tile is None else tile, optional=optional)
    checks.integer("batch", batch, 1, MAX_BATCH)
    if overlap is not None and overlap % 2:
        raise InputError(f"overlap must be even (half of it is context on each side of a tile), got {overlap}")


@dataclass(frozen=True)
class Intensity:
    """The affine map from raw values to network input: ``(x - low) / (high - low)``, optionally inverted."""

    low: float
    high: float
    invert: bool = False
    clip: bool = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """float32 network input; computed in float64 unless ``x`` is exact in float32 (8/16-bit, float16), so
        values beyond the float32 range or ranges too narrow for it (subnormal) are scaled, not lost."""
        work = np.float32 if x.dtype.itemsize <= 2 and x.dtype.kind in "uifb" else np.float64
        y = x.astype(work)
        low, high = self.low, self.high
        if not math.isfinite(high - low):  # e.g. -1e308 to 1e308: halve everything first
            y /= 2
            low, high = low / 2, high / 2
        y -= work(low)
        if high > low:
            y /= work(high - low)  # a division: 1 / (high - low) may overflow when the range is subnormal
        else:
            y[...] = 0
        y = y.astype(np.float32, copy=False)
        if self.clip:
            np.clip(y, 0, 1, out=y)
        return 1 - y if self.invert else y


def intensity_range(plane: np.ndarray, method: str = "minmax", invert: bool = False) -> Intensity:
    """EPySeg's normalisation: min-max over the whole plane, or the 2-99.8 percentiles (clipped to [0, 1]).

    Examples
    --------
    >>> intensity_range(np.array([[10, 20], [30, 50]]))(np.array([30]))
    array([0.5], dtype=float32)
    """
    if method not in NORMALIZATIONS:
        raise InputError(f"unknown normalization {method!r}; use one of {', '.join(NORMALIZATIONS)}")
    ranges = [(band.min(), band.max()) for _, band in bands(plane)]
    low, high = float(np.min([r[0] for r in ranges])), float(np.max([r[1] for r in ranges]))  # NaN propagates
    if not (np.isfinite(low) and np.isfinite(high)):
        raise InputError("the image contains NaN or infinite values")
    if method == "percentile":
        low, high = percentiles(plane, PERCENTILES)
    return Intensity(low, high, invert, clip=method == "percentile")


def percentiles(plane: np.ndarray, q: tuple[float, ...]) -> tuple[float, ...]:
    """Percentiles of a plane; exact from a histogram for 8/16-bit images (no sorted copy of a large image), else
    from every n-th pixel of the plane in raster order (about 4 million of them)."""
    if plane.dtype in (np.uint8, np.uint16):
        levels = np.iinfo(plane.dtype).max + 1
        cdf = np.cumsum(sum(kernels.histogram(band, levels) for _, band in bands(plane)))
        return tuple(float(np.searchsorted(cdf, p / 100 * (cdf[-1] - 1), side="right")) for p in q)
    width = plane.shape[1]
    step = max(1, plane.shape[0] * width // 4_000_000)
    sample = np.concatenate([band.ravel()[-(y * width) % step :: step] for y, band in bands(plane)])
    return tuple(float(v) for v in np.percentile(sample, q))


def bands(plane, pixels: int = 1 << 24) -> Iterator[tuple[int, np.ndarray]]:
    """``(y, rows)``: a plane (any array that slices into numpy) as numpy bands of about ``pixels`` px, in order."""
    height = max(1, pixels // max(1, plane.shape[1]))
    for y in range(0, plane.shape[0], height):
        yield y, np.asarray(plane[y : y + height])


def axis_windows(n: int, tile: int, margin: int) -> tuple[int, list[int]]:
    """Window length and output starts along one axis; windows run from ``start - margin`` for ``length`` px.

    Each window's output is ``min(tile, n)`` px from its start; the last start is moved back so the windows end
    exactly at ``n`` (overlapping the previous one) instead of padding.

    Examples
    --------
    >>> axis_windows(600, 256, 16)
    (288, [0, 256, 344])
    """
    size = min(tile, n)
    length = -(-(size + 2 * margin) // 32) * 32
    starts = list(range(0, n - size + 1, size))
    if starts[-1] + size < n:
        starts.append(n - size)
    return length, starts


def read_window(plane: np.ndarray, y: int, x: int, height: int, width: int) -> np.ndarray:
    """``plane[y:y+height, x:x+width]``, mirrored (edge pixels repeated) wherever the window leaves the plane."""
    h, w = plane.shape
    if y >= 0 and x >= 0 and y + height <= h and x + width <= w:
        return plane[y : y + height, x : x + width]
    return plane[np.ix_(_mirror(np.arange(y, y + height), h), _mirror(np.arange(x, x + width), w))]


def read_rows(plane, y: int, height: int) -> np.ndarray:
    """Rows ``y`` to ``y + height`` of a plane (any array that slices into numpy) as numpy, mirrored beyond it."""
    rows = _mirror(np.arange(y, y + height), plane.shape[0])
    first, last = int(rows.min()), int(rows.max()) + 1
    block = np.asarray(plane[first:last])
    return block if last - first == height and rows[0] == first else block[rows - first]


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """Symmetric reflection of indices into [0, n), as numpy's 'symmetric' padding, for any distance."""
    index = np.mod(index, 2 * n)
    return np.where(index < n, index, 2 * n - 1 - index)


Transform = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]


def tta_transforms(mode: str, plane: np.ndarray | None = None, intensity: Intensity | None = None) -> list[Transform]:
    """(forward, inverse) pairs over batches (N, H, W, C): ``none`` 1, ``flip`` the 8 dihedral views,
    ``epyseg`` the 8 views plus EPySeg's 5 intensity variants (contrast stretches, gamma, log, sigmoid)."""
    if mode not in TTA_MODES:
        raise InputError(f"unknown tta {mode!r}; use one of {', '.join(TTA_MODES)}")
    if mode == "none":
        return [(_same, _same)]
    views = [(_dihedral(k, flip), _dihedral_inverse(k, flip)) for flip in (False, True) for k in range(4)]
    if mode == "flip":
        return views
    low, high = (0.0, 1.0)
    if plane is not None and intensity is not None:
        p = np.array(percentiles(plane, (0.9, 98, 5, 95)), np.float64)
        low, high = intensity(p[:2]), intensity(p[2:])
        low, high = sorted(low), sorted(high)
    stretches = [
        lambda x, r=tuple(low): exposure.rescale_intensity(x, in_range=r, out_range=(0.0, 1.0)),
        lambda x, r=tuple(high): exposure.rescale_intensity(x, in_range=r, out_range=(0.0, 1.0)),
        lambda x: exposure.adjust_gamma(np.clip(x, 0, None), gamma=0.8, gain=0.9),
        lambda x: exposure.adjust_log(np.clip(x, 0, None)),
        lambda x: exposure.adjust_sigmoid(x, gain=5),
    ]
    return views + [(f, _same) for f in stretches]


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _dihedral(k: int, flip: bool) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.rot90(x[:, :, ::-1] if flip else x, k, axes=(1, 2))


def _dihedral_inverse(k: int, flip: bool) -> Callable[[np.ndarray], np.ndarray]:
    def inverse(y: np.ndarray) -> np.ndarray:
        y = np.rot90(y, -k, axes=(1, 2))
        return y[:, :, ::-1] if flip else y

    return inverse


def count_tiles(shape: tuple[int, int], tiling: Tiling) -> int:
    """How many tiles ``predict_rows`` runs for a plane of this shape."""
    margin = tiling.overlap // 2
    return len(axis_windows(shape[0], tiling.tile, margin)[1]) * len(axis_windows(shape[1], tiling.tile, margin)[1])


def predict_rows(
    plane: np.ndarray,
    network: Callable[[np.ndarray], np.ndarray],
    tiling: Tiling,
    intensity: Intensity,
    tta: list[Transform],
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Predict a plane one tile row at a time.

    Parameters
    ----------
    plane : (H, W) array, raw values (numpy, or any array that slices into numpy: read a row of tiles at a time).
    network : function from a float32 batch (N, h, w, 1) to (N, h, w, C), h and w multiples of 32.
    tiling, intensity, tta : see ``Tiling``, ``intensity_range``, ``tta_transforms``.
    on_batch : called with the number of tiles after every network batch (progress, cancellation).

    Yields
    ------
    (y, rows) : the first plane row of the strip and the strip's predictions, float32 (rows, W, C). Strips follow
        each other without gaps or overlaps and cover the plane.
    """
    tiling.check_call(plane.shape)
    height, width = plane.shape
    margin = tiling.overlap // 2
    win_h, ys = axis_windows(height, tiling.tile, margin)
    win_w, xs = axis_windows(width, tiling.tile, margin)
    out_h, out_w = min(tiling.tile, height), min(tiling.tile, width)
    done = 0
    for y in ys:
        strip = None
        source = read_rows(plane, y - margin, win_h)
        for first in range(0, len(xs), tiling.batch):
            chunk = xs[first : first + tiling.batch]
            batch = np.stack([read_window(source, 0, x - margin, win_h, win_w) for x in chunk])
            batch = intensity(batch)[..., np.newaxis]
            pred = _predict_tta(network, batch, tta)[:, margin : margin + out_h, margin : margin + out_w]
            if strip is None:
                strip = np.empty((out_h, width, pred.shape[-1]), np.float32)
            for x, tile in zip(chunk, pred, strict=True):
                strip[:, x : x + out_w] = tile
            if on_batch:
                on_batch(len(chunk))
        yield max(y, done), strip[done - y if done > y else 0 :]
        done = y + out_h


def _predict_tta(network: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, tta: list[Transform]) -> np.ndarray:
    total = None
    for forward, inverse in tta:
        pred = inverse(network(np.ascontiguousarray(forward(batch), dtype=np.float32)))
        if total is None:  # a copy only to sum several passes into: the network's output is a new array
            total = pred.astype(np.float32, copy=len(tta) > 1)
        else:
            total += pred
    return total / len(tta) if len(tta) > 1 else total
