"""Per-cell measurements of a label image, in numpy: label, area, centroid and number of neighbours.

Cells follow the Tissue Analyzer convention of the engine: label ``n > 0`` marks the pixels of cell ``n``, 0 marks the
1-px boundaries between cells. Two cells are neighbours when a boundary pixel touches both of them (4-connectivity),
i.e. when they share a bond. Perimeters need the traced outlines, so they come from the ImageJ ROIs
(``convert.perimeters``).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

OFFSETS_4 = ((-1, 0), (1, 0), (0, -1), (0, 1))


def cell_ids(labels: np.ndarray) -> np.ndarray:
    """The labels present in a 2D label image, ascending, without 0."""
    ids = np.unique(labels)
    return ids[ids > 0]


def neighbour_pairs(labels: np.ndarray) -> np.ndarray:
    """Pairs ``(a, b)``, ``a < b``, of cells that share a boundary pixel; shape (n_pairs, 2), sorted.

    Examples
    --------
    >>> lab = np.array([[1, 1, 0, 2], [1, 1, 0, 2], [0, 0, 0, 0], [3, 3, 0, 4]])
    >>> neighbour_pairs(lab).tolist()
    [[1, 2], [1, 3], [2, 4], [3, 4]]
    """
    labels = _check_2d(labels)
    padded = np.pad(labels.astype(np.int64, copy=False), 1)
    ys, xs = np.nonzero(labels == 0)
    around = [padded[ys + 1 + dy, xs + 1 + dx] for dy, dx in OFFSETS_4]
    top = int(labels.max()) + 1
    codes = []
    for i in range(len(around)):
        for j in range(i + 1, len(around)):
            a, b = np.minimum(around[i], around[j]), np.maximum(around[i], around[j])
            keep = (a > 0) & (a != b)
            codes.append(a[keep] * top + b[keep])
    codes = np.unique(np.concatenate(codes)) if codes else np.empty(0, np.int64)
    return np.stack([codes // top, codes % top], axis=1) if codes.size else np.empty((0, 2), np.int64)


def neighbour_counts(labels: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """Number of neighbours of each cell in ``ids`` (default: every cell, ascending)."""
    ids = cell_ids(labels) if ids is None else ids
    pairs = neighbour_pairs(labels)
    counts = np.bincount(pairs.ravel(), minlength=int(labels.max()) + 1) if pairs.size else None
    return counts[ids] if counts is not None else np.zeros(len(ids), np.int64)


def cell_table(
    labels: np.ndarray,
    spacing: tuple[float, float] = (1.0, 1.0),
    origin: tuple[float, float] = (0.0, 0.0),
) -> dict[str, np.ndarray]:
    """Label, area, centroid and neighbour count of every cell of a 2D label image.

    Parameters
    ----------
    labels : 2D integer array
        0 on boundaries, cell ``n`` = pixels of value ``n``.
    spacing : (pixel height, pixel width)
        Size of a pixel in calibrated units.
    origin : (y, x)
        Origin in pixels, as ImageJ's calibration has it; centroids are ``(index + 0.5 - origin) * spacing``.

    Returns
    -------
    dict of 1D arrays
        ``Label``, ``Area`` (calibrated), ``X``, ``Y`` (calibrated centroids, like ImageJ's Measure), ``Neighbours``
        and ``Pixels`` (area in pixels); one entry per cell, by ascending label.

    Examples
    --------
    >>> lab = np.array([[1, 1, 0, 2], [1, 1, 0, 2]])
    >>> table = cell_table(lab, spacing=(0.5, 0.5))
    >>> table["Area"].tolist(), table["X"].tolist(), table["Neighbours"].tolist()
    ([1.0, 0.5], [0.5, 1.75], [1, 1])
    """
    labels = _check_2d(labels)
    flat = labels.ravel().astype(np.int64, copy=False)
    top = int(flat.max()) + 1 if flat.size else 1
    pixels = np.bincount(flat, minlength=top)
    ys, xs = np.indices(labels.shape)
    sum_y = np.bincount(flat, weights=ys.ravel(), minlength=top)
    sum_x = np.bincount(flat, weights=xs.ravel(), minlength=top)
    ids = np.nonzero(pixels)[0]
    ids = ids[ids > 0]
    n = pixels[ids]
    dy, dx = spacing
    return {
        "Label": ids.astype(np.int64),
        "Area": n * dx * dy,
        "X": (sum_x[ids] / n + 0.5 - origin[1]) * dx,
        "Y": (sum_y[ids] / n + 0.5 - origin[0]) * dy,
        "Neighbours": neighbour_counts(labels, ids),
        "Pixels": n.astype(np.int64),
    }


def _check_2d(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise InputError(f"expected a 2D integer label image, got {labels.dtype} of shape {labels.shape}")
    return labels
