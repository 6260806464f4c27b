"""From network outputs to closed 1-px outlines and cell labels (Tissue Analyzer convention).

Outlines are uint8 masks, 255 on 1-px boundaries that are 8-connected lines; cells are the 4-connected regions of 0.
"""

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from epyseg_ij.kernels import flood_levels, histogram, interface_sums, thin

FOUR = ndi.generate_binary_structure(2, 1)
INTERIOR, SEED, MARKER = 1, 2, 4  # bits of the per-pixel code made by `decode`
MIN_MARKER_PX = 5  # smaller cell cores are noise (EPySeg fills non-bond regions < 5 px)


def decode(probs: np.ndarray, outputs: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel reading of network outputs: a bond likelihood and a code of cell-interior and seed bits.

    Parameters
    ----------
    probs : (H, W, C) float array
        Sigmoid outputs. ``outputs="epyseg7"``: EPySeg's channels (0-2 bonds 1, 3 and 5 px wide, 3-4 their
        inverses, 5 cell seeds, 6 its inverse). ``outputs="bonds"``: one boundary-probability channel.

    Returns
    -------
    bonds : (H, W) float32 in [0, 1]
        For 7 channels, the mean of the five bond-like maps: highest on the 1-px line, fading over 2 px.
    code : (H, W) uint8
        ``INTERIOR`` where a pixel is more than 1 px from any bond, ``SEED`` on seed blobs.
    """
    if outputs == "epyseg7":
        p = [probs[..., i] for i in range(7)]
        bonds = (p[0] + p[1] + p[2] + (2 - p[3] - p[4])) / 5
        interior = p[3] - p[1] > 0  # mean of ch3 and not-ch1 above 0.5
        seed = p[5] - p[6] > 0
        code = interior.view(np.uint8) * np.uint8(INTERIOR) | seed.view(np.uint8) * np.uint8(SEED)
    elif outputs == "bonds":
        bonds = probs[..., 0]
        code = (bonds < 0.5).view(np.uint8) * np.uint8(INTERIOR)
    else:
        raise ValueError(f"unknown outputs {outputs!r}")
    return np.clip(bonds, 0, 1).astype(np.float32, copy=False), code


def choose_markers(code: np.ndarray) -> np.ndarray:
    """One watershed marker per cell: cell interiors, split at seed blobs where an interior holds several.

    An interior region with two or more seed blobs is two or more cells joined through a gap in their bond: its
    seed blobs become the markers. Markers smaller than ``MIN_MARKER_PX`` are dropped.
    """
    interior = (code & INTERIOR).astype(bool)
    regions, n = ndi.label(interior, structure=FOUR)
    seeds, n_seeds = ndi.label((code & SEED).astype(bool) & interior, structure=FOUR)
    region_of_seed = np.zeros(n_seeds + 1, regions.dtype)  # a seed blob lies in one interior region
    on_seed = seeds > 0
    region_of_seed[seeds[on_seed]] = regions[on_seed]
    several = np.bincount(region_of_seed[1:], minlength=n + 1) >= 2
    several[0] = False
    # The markers are the regions with fewer than two seeds and the seeds of the others, large enough.
    keep_region = ~several & (histogram(regions, n + 1) >= MIN_MARKER_PX)
    keep_seed = several[region_of_seed] & (histogram(seeds, n_seeds + 1) >= MIN_MARKER_PX)
    keep_region[0] = keep_seed[0] = False
    return keep_region[regions] | keep_seed[seeds]


def flood(bonds: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """Seeded watershed of the bond map from labelled markers (4-connected), without lines (int32).

    The bond map is quantised to 256 levels and flooded with a bucket queue (``kernels.flood_levels``): many times
    faster than a heap-based watershed of the float image, and the same cells.
    """
    levels = (bonds * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    regions = markers.astype(np.int32)  # a copy: flooded in place
    flood_levels(levels, regions)
    return regions


def labels_from_outlines(outlines: np.ndarray) -> np.ndarray:
    """Number the cells of an outline mask.

    Parameters
    ----------
    outlines : (H, W) array
        Non-zero on boundaries.

    Returns
    -------
    labels : (H, W) uint16 or uint32
        The 4-connected regions of 0 numbered 1..n in raster order (uint32 only when n > 65535), 0 on boundaries.

    Examples
    --------
    >>> labels_from_outlines(np.array([[0, 255, 0]], np.uint8))
    array([[1, 0, 2]], dtype=uint16)
    """
    if outlines.ndim != 2:
        raise ValueError(f"outlines must be 2D, got shape {outlines.shape}")
    labels = np.empty(outlines.shape, np.int32)
    n = ndi.label(outlines == 0, structure=FOUR, output=labels)
    return compact_labels(labels, n)


def compact_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """int32 labels 0..n as uint16 when they fit (a copy), else as uint32 (a view)."""
    return labels.astype(np.uint16) if n <= np.iinfo(np.uint16).max else labels.view(np.uint32)


def outlines_from_regions(regions: np.ndarray, bonds: np.ndarray | None = None) -> np.ndarray:
    """1-px boundaries between the regions of a label image.

    Every pair of 4-adjacent pixels with different labels gets one boundary pixel: the one with the higher ``bonds``
    value (the upper or left one on ties, or without ``bonds``). Boundary pixels that separate nothing are then given
    back to the cell around them, so lines are 1 px wide and the cells are the 4-connected regions of 0. Each region
    becomes one cell, except regions too thin to hold one (a single pixel, a 1-px sliver), absorbed by a neighbour.

    Parameters
    ----------
    regions : (H, W) integer array
        A partition of the image, e.g. a watershed without lines or a ground-truth label image; 0 is a region too.
    bonds : (H, W) float array, optional
        Boundary likelihood used to put each line on the ridge.

    Returns
    -------
    outlines : (H, W) uint8, 255 on boundaries.

    Examples
    --------
    >>> outlines_from_regions(np.array([[1, 1, 2, 2]]))
    array([[  0, 255,   0,   0]], dtype=uint8)
    """
    if regions.ndim != 2:
        raise ValueError(f"regions must be 2D, got shape {regions.shape}")
    boundary = np.zeros(regions.shape, bool)
    for axis in (0, 1):
        first = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        second = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        differ = regions[first] != regions[second]
        take_second = differ & (bonds[second] > bonds[first]) if bonds is not None else np.zeros_like(differ)
        boundary[first] |= differ & ~take_second
        boundary[second] |= take_second
    ids = regions.astype(np.int32)
    thin(boundary, ids)
    if _drop_fragments(boundary, ids):
        thin(boundary, ids)
    return boundary.view(np.uint8) * np.uint8(255)


def interfaces(
    regions: np.ndarray,
    bonds: np.ndarray,
    n: int,
    window: tuple[slice, slice] = (slice(None), slice(None)),
    image: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """Evidence between touching regions: for each pair (a < b) of 4-adjacent labels, the summed bond value (the
    higher of each pixel pair across their interface), the number of pixel pairs and, with ``image``, the summed
    image value (the higher of each pair).

    Only pixel pairs whose first (upper or left) pixel lies in ``window`` are counted, so tiles can be summed
    separately.

    Returns
    -------
    keys, sums, counts[, image_sums] : 1D arrays; ``keys = a * (n + 1) + b`` where ``n`` is the highest label.
    """
    (y0, y1, _), (x0, x1, _) = (w.indices(size) for w, size in zip(window, regions.shape, strict=True))
    bonds = np.asarray(bonds, np.float32)
    plane = bonds if image is None else np.asarray(image, np.float32)
    keys, sums = interface_sums(regions, bonds, plane, image is not None, (y0, y1, x0, x1), int(n))
    counts = sums[1].astype(np.int64)
    return (keys, sums[0], counts) if image is None else (keys, sums[0], counts, sums[2])


def merge_table(keys: np.ndarray, sums: np.ndarray, counts: np.ndarray, n: int, below: float) -> np.ndarray:
    """A lookup table ``old label -> new label`` that merges regions whose interface has a mean bond value below
    ``below`` (a boundary the network does not see), transitively; label 0 stays 0."""
    return join(keys[sums < below * counts], n)


def join(weak: np.ndarray, n: int) -> np.ndarray:
    """A lookup table ``old label -> new label`` that merges the pairs of ``weak`` interface keys, transitively."""
    a, b = weak // (n + 1), weak % (n + 1)
    graph = coo_matrix((np.ones(len(weak), bool), (a, b)), shape=(n + 1, n + 1))
    _, component = connected_components(graph, directed=False)
    _, table = np.unique(component, return_inverse=True)  # renumber 0.. in order of first label
    return table.astype(np.int32)


def faint_interfaces(
    keys: np.ndarray,
    bond_sums: np.ndarray,
    counts: np.ndarray,
    image_sums: np.ndarray,
    interior: np.ndarray,
    n: int,
    faint: float,
    bonds_below: float,
) -> np.ndarray:
    """Keys of the interfaces that neither the image nor the network clearly shows: false boundaries through a cell.

    An interface's image contrast is its mean image value above the brighter interior of the two regions
    (``interior``, one mean per label). It is *faint* when that contrast is below ``faint`` times the mean contrast
    of the other interfaces of the same two regions: a local comparison, unaffected by contrast gradients across
    the field. Faint interfaces whose mean bond value is also below ``bonds_below`` are returned.
    """
    a, b = keys // (n + 1), keys % (n + 1)
    contrast = image_sums / counts - np.maximum(interior[a], interior[b])
    length_contrast = contrast * counts
    total = np.bincount(a, length_contrast, n + 1) + np.bincount(b, length_contrast, n + 1)
    length = np.bincount(a, counts, n + 1) + np.bincount(b, counts, n + 1)
    others = (total[a] + total[b] - 2 * length_contrast) / np.maximum(length[a] + length[b] - 2 * counts, 1)
    weak = (contrast < faint * np.maximum(others, 0)) & (bond_sums < bonds_below * counts) & (a > 0)
    return keys[weak]


def _drop_fragments(boundary: np.ndarray, ids: np.ndarray) -> bool:
    """Turn into boundary the pieces of a region cut off from its largest piece (1-px slivers); True if any."""
    pieces, n = ndi.label(~boundary, structure=FOUR)
    if n == 0:
        return False
    region = np.zeros(n + 1, ids.dtype)
    region[pieces] = ids  # all pixels of a piece carry the same id
    size = np.bincount(pieces.ravel(), minlength=n + 1)
    size[0] = 0
    largest = np.zeros(int(region.max()) + 1, size.dtype)
    np.maximum.at(largest, region, size)
    fragment = (size < largest[region])[pieces]
    boundary |= fragment
    return bool(fragment.any())
