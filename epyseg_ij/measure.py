"""Per-cell measurements of label images, in numpy (no JVM): the per-cell table (label, area, perimeter, centroid,
neighbours; perimeters from ``outlines``), the cells on the image border, and the table as a CSV file with units.

Cells follow the Tissue Analyzer convention of the engine: label ``n > 0`` marks the pixels of cell ``n``, 0 marks the
1-px boundaries between cells. Two cells are neighbours when a boundary pixel touches both of them (4-connectivity),
i.e. when they share a bond. The ImageJ commands (``epyseg_ij.ij``) and ``epyseg-ij measure`` both measure here, so
their numbers are the same.
"""

from __future__ import annotations

import csv
import io as _io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import InputError
from .outlines import Outline, outlines, perimeters

OFFSETS_4 = ((-1, 0), (1, 0), (0, -1), (0, 1))
MAX_LABEL = 2**32 - 1
UNITS = {"micron": "µm", "microns": "µm", "um": "µm", "μm": "µm", "pixel": "px", "pixels": "px", "": "px"}


# ----------------------------------------------------------------------------------------------------- labels


def as_labels(array: np.ndarray) -> np.ndarray:
    """Labels from a label image (integers, or whole floats as ImageJ's 32-bit images hold them) or a Tissue
    Analyzer outline mask (8-bit, 0 and 255 only: cells are the 4-connected regions of 0), plane by plane.

    ``InputError`` for anything else (a grey 8-bit image, fractional or negative values).
    """
    from .postprocess import labels_from_outlines

    array = np.asarray(array)
    if array.ndim < 2:
        raise InputError(f"expected an image, got an array of shape {array.shape}")
    if array.dtype == np.uint8:
        if not set(np.unique(array).tolist()) <= {0, 255}:
            raise InputError("an 8-bit image must be an outline mask (0 and 255 only) to be measured")
        planes = [labels_from_outlines(p) for p in array.reshape(-1, *array.shape[-2:])]
        dtype = np.uint32 if any(p.dtype == np.uint32 for p in planes) else np.uint16
        return np.stack([p.astype(dtype) for p in planes]).reshape(array.shape)
    if array.dtype.kind == "f":
        whole = np.isfinite(array).all() and np.array_equal(array, np.round(array))
        if not whole or (array.size and (array.min() < 0 or array.max() > MAX_LABEL)):
            raise InputError(f"a 32-bit image must hold whole labels from 0 to {MAX_LABEL} to be measured")
        return array.astype(np.uint32)
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise InputError("labels must not be negative")
    if array.dtype.kind not in "ui":
        raise InputError(f"cannot measure a {array.dtype} image: give a label image or an outline mask")
    return array


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


def border_cells(labels: np.ndarray) -> np.ndarray:
    """The cells that touch the image border, ascending: a pixel on the border, or a boundary pixel between them
    and the border (Tissue Analyzer's 1-px frame of boundary counts as the border)."""
    labels = _check_2d(labels)
    if min(labels.shape) < 3:
        return cell_ids(labels)
    edges = [
        (labels[0], labels[1]),
        (labels[-1], labels[-2]),
        (labels[:, 0], labels[:, 1]),
        (labels[:, -1], labels[:, -2]),
    ]
    touching = [np.concatenate([edge, inner[edge == 0]]) for edge, inner in edges]
    return cell_ids(np.concatenate(touching))


# ------------------------------------------------------------------------------------------------------ tables


def cell_table(
    labels: np.ndarray,
    spacing: tuple[float, float] = (1.0, 1.0),
    origin: tuple[float, float] = (0.0, 0.0),
    cell_outlines: list[Outline] | None = None,
) -> dict[str, np.ndarray]:
    """Label, area, perimeter, centroid and neighbour count of every cell of a 2D label image.

    Parameters
    ----------
    labels : 2D integer array
        0 on boundaries, cell ``n`` = pixels of value ``n``.
    spacing : (pixel height, pixel width)
        Size of a pixel in calibrated units.
    origin : (y, x)
        Origin in pixels, as ImageJ's calibration has it; centroids are ``(index + 0.5 - origin) * spacing``.
    cell_outlines : list of Outline, optional
        ``outlines(labels)`` when already traced, or some of them: the table then has those cells only.

    Returns
    -------
    dict of 1D arrays
        ``Label``, ``Area`` (calibrated), ``Perim.`` (as ImageJ measures the cell's ROI), ``X``, ``Y`` (calibrated
        centroids, like ImageJ's Measure), ``Neighbours`` and ``Pixels`` (area in pixels); one entry per cell, by
        ascending label.

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
    cell_outlines = outlines(labels) if cell_outlines is None else cell_outlines
    ids = np.array([o.label for o in cell_outlines], np.int64)
    n = pixels[ids]
    dy, dx = spacing
    return {
        "Label": ids.astype(np.int64),
        "Area": n * dx * dy,
        "Perim.": perimeters(cell_outlines, spacing),
        "X": (sum_x[ids] / n + 0.5 - origin[1]) * dx,
        "Y": (sum_y[ids] / n + 0.5 - origin[0]) * dy,
        "Neighbours": neighbour_counts(labels, ids),
        "Pixels": n.astype(np.int64),
    }


COLUMNS = ("Label", "Area", "Perim.", "X", "Y", "Neighbours")  # what the Results tables and CSV files show


def planes(array: np.ndarray, axes: str):
    """(stack index from 1, (z, t) from 1, 2D plane) for each plane of a ``[T][Z]YX`` array."""
    nt = array.shape[axes.index("T")] if "T" in axes else 1
    nz = array.shape[axes.index("Z")] if "Z" in axes else 1
    stacked = array.reshape(nt, nz, *array.shape[-2:])
    for t in range(nt):
        for z in range(nz):
            yield t * nz + z + 1, (z + 1, t + 1), stacked[t, z]


def plane_outlines(
    labels: np.ndarray,
    axes: str = "YX",
    exclude_border: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[Outline]]:
    """The cell outlines of each plane of a ``[T][Z]YX`` label image; with ``exclude_border``, without the cells
    that touch the image border (``border_cells``). ``progress(done, total)`` is called before each plane and at
    the end (it may raise to stop)."""
    found = []
    n_planes = labels.size // (labels.shape[-2] * labels.shape[-1]) if labels.size else 1
    for index, _, plane in planes(labels, axes):
        if progress is not None:
            progress(index - 1, n_planes)
        plane = _integer(plane)
        cells = outlines(plane)
        if exclude_border:
            border = set(border_cells(plane).tolist())
            cells = [o for o in cells if o.label not in border]
        found.append(cells)
    if progress is not None:
        progress(n_planes, n_planes)
    return found


def results(
    labels: np.ndarray,
    axes: str = "YX",
    spacing: tuple[float, float] = (1.0, 1.0),
    origin: tuple[float, float] = (0.0, 0.0),
    exclude_border: bool = False,
    outlines_per_plane: list[list[Outline]] | None = None,
) -> dict[str, np.ndarray]:
    """The per-cell table of a label image or stack (``[T][Z]YX``): ``COLUMNS``, plus ``Slice``/``Frame`` for
    stacks; with ``exclude_border`` the cells that touch the image border are left out. ``outlines_per_plane``
    (from ``plane_outlines``) saves tracing again, and chooses the cells."""
    if outlines_per_plane is None:
        outlines_per_plane = plane_outlines(labels, axes, exclude_border)
    tables = []
    for (_, (z, t), plane), cells in zip(planes(labels, axes), outlines_per_plane, strict=True):
        table = cell_table(_integer(plane), spacing, origin, cells)
        ordered = {key: table[key] for key in COLUMNS}
        if "Z" in axes:
            ordered["Slice"] = np.full(len(cells), z)
        if "T" in axes:
            ordered["Frame"] = np.full(len(cells), t)
        tables.append(ordered)
    return {key: np.concatenate([t[key] for t in tables]) for key in tables[0]} if tables else {}


def headers(table: dict[str, np.ndarray], unit: str = "pixel") -> list[str]:
    """Column names with their units, as the CSV files have them: ``Area (µm²)``, ``Perim. (µm)``, ``X (µm)``."""
    short = UNITS.get(unit, unit)
    with_unit = {"Area": f"Area ({short}²)", "Perim.": f"Perim. ({short})", "X": f"X ({short})", "Y": f"Y ({short})"}
    return [with_unit.get(key, key) for key in table]


def write_csv(path: os.PathLike, table: dict[str, np.ndarray], unit: str = "pixel", overwrite: bool = False) -> Path:
    """Write a per-cell table as a comma-separated UTF-8 file with units in the headers, atomically.

    Without ``overwrite`` an existing file is kept (``InputError``). One row per cell; integers as integers, other
    numbers with at most 6 decimals.
    """
    from . import files

    path = Path(path)
    text = _io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(headers(table, unit))
    columns = [np.asarray(values) for values in table.values()]
    for row in zip(*columns, strict=True):
        writer.writerow([_number(v) for v in row])
    data = text.getvalue().encode("utf-8")
    files.atomic_write(path, lambda fh: fh.write(data), overwrite=overwrite)
    return path


def _number(value) -> str:
    """An integer as such, any other number with at most 6 decimals (ImageJ shows 3)."""
    if isinstance(value, np.integer) or float(value).is_integer() and abs(float(value)) < 2**53:
        return str(int(value))
    return repr(round(float(value), 6))


def _integer(plane: np.ndarray) -> np.ndarray:
    """A plane of whole floats (an ImageJ 32-bit label image) as integers."""
    return plane.astype(np.int64) if plane.dtype.kind == "f" else plane


def _check_2d(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise InputError(f"expected a 2D integer label image, got {labels.dtype} of shape {labels.shape}")
    return labels
