"""Segmentation metrics: boundary pixel IoU and the EPySeg paper's segmentation quality.

Segmentation quality (Aigouy et al. 2020) is ``(correct - over - under) / n_gt`` where

- *correct*: a ground-truth (GT) cell matched by a predicted cell with IoU > 0.7 (at most one can be);
- *over*: an unmatched GT cell holding >= 2 predicted cells that each have more than half of their area
  inside it;
- *under*: an unmatched predicted cell holding >= 2 GT cells that each have more than half of their area
  inside it.

Cells are the labels > 0. The cell-pair overlaps come from a sparse contingency table (one sort of the paired
labels), so a 2048 x 2048 image with 20,000 cells takes a fraction of a second.
"""

import os
from pathlib import Path

import numpy as np
import tifffile

from epyseg_ij.errors import InputError
from epyseg_ij.postprocess import labels_from_outlines, outlines_from_regions

MATCH_IOU = 0.7
"""A GT cell is correctly segmented when a predicted cell overlaps it with an IoU above this."""


def pixel_iou(pred_outlines: np.ndarray, gt_outlines: np.ndarray) -> float:
    """Intersection over union of two sets of boundary pixels (exact pixel positions, no tolerance).

    Parameters
    ----------
    pred_outlines, gt_outlines : (H, W) arrays
        Outline masks, non-zero on boundaries.

    Returns
    -------
    float
        ``|pred & gt| / |pred | gt|``; 1.0 when neither mask has a boundary pixel.

    Examples
    --------
    >>> pixel_iou(np.array([[0, 255, 255]]), np.array([[0, 255, 0]]))
    0.5
    """
    _check_pair(pred_outlines, gt_outlines)
    pred, gt = pred_outlines != 0, gt_outlines != 0
    union = np.count_nonzero(pred | gt)
    return float(np.count_nonzero(pred & gt) / union) if union else 1.0


def seg_quality(pred_labels: np.ndarray, gt_labels: np.ndarray) -> dict:
    """Segmentation quality of predicted cells against ground-truth cells.

    Parameters
    ----------
    pred_labels, gt_labels : (H, W) non-negative integer arrays
        Label images; cells are the labels > 0 (ids need not be contiguous), 0 is boundary or background.

    Returns
    -------
    dict
        ``seg_quality`` (float, ``(n_correct - n_over - n_under) / n_gt``, at most 1), ``n_gt``, ``n_pred``,
        ``n_correct``, ``n_over``, ``n_under`` (ints).

    Raises
    ------
    InputError
        Shapes differ, arrays are not 2D integer label images, or the ground truth has no cell.

    Examples
    --------
    >>> gt = np.array([[1, 1, 1, 1, 0, 2, 2, 2, 2]])
    >>> pred = np.array([[1, 1, 0, 3, 0, 2, 2, 2, 2]])  # GT cell 1 split in two
    >>> q = seg_quality(pred, gt)
    >>> q["n_correct"], q["n_over"], q["seg_quality"]
    (1, 1, 0.0)
    """
    _check_pair(pred_labels, gt_labels)
    gt_index, gt_area = _compact(_as_label_array(gt_labels, "gt_labels"))
    pred_index, pred_area = _compact(_as_label_array(pred_labels, "pred_labels"))
    n_gt, n_pred = len(gt_area), len(pred_area)
    if n_gt == 0:
        raise InputError("the ground truth has no cell (no label > 0)")
    both = (gt_index > 0) & (pred_index > 0)
    pairs, inter = np.unique(gt_index[both] * (n_pred + 1) + pred_index[both], return_counts=True)
    g, p = np.divmod(pairs, n_pred + 1)
    area_g, area_p = gt_area[g - 1], pred_area[p - 1]
    match = inter > MATCH_IOU * (area_g + area_p - inter)  # IoU > 0.7 without dividing
    gt_matched = np.zeros(n_gt + 1, bool)
    gt_matched[g[match]] = True
    pred_matched = np.zeros(n_pred + 1, bool)
    pred_matched[p[match]] = True
    pieces_in_gt = np.bincount(g[2 * inter > area_p], minlength=n_gt + 1)  # predicted cells mostly inside each GT cell
    gt_in_pred = np.bincount(p[2 * inter > area_g], minlength=n_pred + 1)  # GT cells mostly inside each predicted cell
    n_correct = int(np.count_nonzero(gt_matched))
    n_over = int(np.count_nonzero(~gt_matched[1:] & (pieces_in_gt[1:] >= 2)))
    n_under = int(np.count_nonzero(~pred_matched[1:] & (gt_in_pred[1:] >= 2)))
    return {
        "seg_quality": (n_correct - n_over - n_under) / n_gt,
        "n_gt": n_gt,
        "n_pred": n_pred,
        "n_correct": n_correct,
        "n_over": n_over,
        "n_under": n_under,
    }


def as_labels(array: np.ndarray) -> np.ndarray:
    """Cell labels of an outline mask or a label image (cells > 0, 0 on boundaries).

    The rule, shared with :func:`as_outlines`:

    - **Outline mask** (Tissue Analyzer convention): a bool array, or one whose values all lie in {0, 255} or
      all lie in {0, 1} (so an all-zero array is one cell). Non-zero pixels are boundaries; cells are the
      4-connected regions of 0, numbered by :func:`~epyseg_ij.postprocess.labels_from_outlines`.
    - **Label image without 0** (a partition, e.g. EpiTools labels): every label is a region; boundaries are
      drawn between regions by :func:`~epyseg_ij.postprocess.outlines_from_regions` and the cells renumbered
      from them (a 1-px region cannot hold a cell and joins a neighbour).
    - **Label image with 0**: 0 pixels are boundary or background; cells keep their ids, except that where two
      different cells touch without a 0 between them the upper or left pixel becomes boundary.

    Parameters
    ----------
    array : (H, W) bool or non-negative integer array
        Float arrays are accepted when all values are whole numbers.

    Returns
    -------
    labels : (H, W) integer array

    Examples
    --------
    >>> as_labels(np.array([[0, 255, 0, 0]], np.uint8))
    array([[1, 0, 2, 2]], dtype=uint16)
    >>> as_labels(np.array([[5, 5, 7, 7]]))
    array([[1, 0, 2, 2]], dtype=uint16)
    """
    return _ta_form(array)[1]


def as_outlines(array: np.ndarray) -> np.ndarray:
    """Tissue Analyzer outline mask (uint8, 255 on boundaries) of an outline mask or a label image.

    The input is classified as in :func:`as_labels`; for a label image with 0 pixels, all 0 pixels are boundary
    (a large background therefore counts as boundary in :func:`pixel_iou`).

    Parameters
    ----------
    array : (H, W) bool or non-negative integer array

    Returns
    -------
    outlines : (H, W) uint8

    Examples
    --------
    >>> as_outlines(np.array([[5, 5, 7, 7]]))
    array([[  0, 255,   0,   0]], dtype=uint8)
    """
    return _ta_form(array)[0].view(np.uint8) * np.uint8(255)


def evaluate(pred: np.ndarray, gt: np.ndarray, exclude_border: bool = False) -> dict:
    """Compare a predicted segmentation to the ground truth; each may be an outline mask or a label image.

    Both are first brought to the Tissue Analyzer form (see :func:`as_labels` for the rule).

    Parameters
    ----------
    pred, gt : (H, W) arrays
        Outline masks or label images of the same shape.
    exclude_border : bool
        Score only the cells that do not touch the image border, in both (for references that leave border cells
        unsegmented); ``pixel_iou`` still covers the whole image.

    Returns
    -------
    dict
        ``pixel_iou`` (float, boundary pixels), ``seg_quality`` (float), ``n_gt``, ``n_pred``, ``n_correct``,
        ``n_over``, ``n_under`` (ints): plain Python numbers, ready for ``json.dumps``.

    Examples
    --------
    >>> mask = np.array([[0, 0, 255, 0, 0]], np.uint8)
    >>> evaluate(mask, np.array([[3, 3, 3, 4, 4]]))["seg_quality"]
    1.0
    """
    _check_pair(pred, gt)
    pred_outlines, pred_labels = _ta_form(pred, "pred")
    gt_outlines, gt_labels = _ta_form(gt, "gt")
    if exclude_border:
        pred_labels, gt_labels = _inner_cells(pred_labels), _inner_cells(gt_labels)
    return {"pixel_iou": pixel_iou(pred_outlines, gt_outlines), **seg_quality(pred_labels, gt_labels)}


def _inner_cells(labels: np.ndarray) -> np.ndarray:
    """The labels with every cell that touches the image border set to 0."""
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.where(np.isin(labels, edge[edge > 0]), 0, labels)


def evaluate_files(pred_path: str | os.PathLike, gt_path: str | os.PathLike, exclude_border: bool = False) -> dict:
    """:func:`evaluate` two 2D TIFF files (e.g. a predicted and a ground-truth ``handCorrection.tif``).

    Parameters
    ----------
    pred_path, gt_path : path
        TIFF files holding one 2D image each (leading singleton axes are dropped).

    Returns
    -------
    dict
        As :func:`evaluate`.

    Raises
    ------
    InputError
        A file is missing or unreadable, is not 2D, or the shapes differ.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "mask.tif"
    >>> tifffile.imwrite(path, np.array([[0, 255, 0]], np.uint8))
    >>> evaluate_files(path, path)["seg_quality"]
    1.0
    """
    pred, gt = _read_2d(pred_path), _read_2d(gt_path)
    if pred.shape != gt.shape:
        raise InputError(f"shape mismatch: {pred_path} is {pred.shape}, {gt_path} is {gt.shape}")
    return evaluate(pred, gt, exclude_border)


def _read_2d(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        array = tifffile.imread(path)
    except Exception as exc:  # tifffile raises many types on bad files
        raise InputError(f"cannot read {path} as a TIFF: {exc}") from exc
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise InputError(f"{path} must hold one 2D image, got shape {array.shape}")
    return array


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.ndim != 2 or gt.ndim != 2:
        raise InputError(f"images must be 2D, got shapes {pred.shape} and {gt.shape}")
    if pred.shape != gt.shape:
        raise InputError(f"shape mismatch: prediction {pred.shape}, ground truth {gt.shape}")


def _as_label_array(array: np.ndarray, name: str) -> np.ndarray:
    """Validate a label image and return it as a non-negative integer array."""
    if array.ndim != 2:
        raise InputError(f"{name} must be 2D, got shape {array.shape}")
    if array.dtype == bool:
        return array.view(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array) & (array == np.round(array))):
            raise InputError(f"{name} must hold whole numbers, got fractional or non-finite values")
        array = array.astype(np.int64)
    elif not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name} must be an integer image, got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise InputError(f"{name} must not hold negative labels")
    return array


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber the cells 1..n (0 stays 0); return the flat new ids (int64) and the areas of cells 1..n."""
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top <= 2 * flat.size + 65536:  # a lookup table is cheap: no sort
        area = np.bincount(flat.astype(np.intp, copy=False), minlength=1)
        present = area > 0
        present[0] = False
        lookup = np.cumsum(present) * present
        return lookup[flat], area[present]
    ids, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if ids[0] == 0:
        return inverse.astype(np.int64), counts[1:]
    return inverse.astype(np.int64) + 1, counts


def _is_outline_mask(array: np.ndarray) -> bool:
    if array.dtype == bool or array.size == 0:
        return True
    low, high = array.min(), array.max()
    if low < 0:
        return False
    if high <= 1:
        return True
    return high == 255 and bool(np.all((array == 0) | (array == 255)))


def _ta_form(array: np.ndarray, name: str = "array") -> tuple[np.ndarray, np.ndarray]:
    """(boundary bool mask, labels) of an outline mask or a label image, by the rule of :func:`as_labels`."""
    array = _as_label_array(np.asarray(array), name)
    if _is_outline_mask(array):
        boundary = array != 0
        return boundary, labels_from_outlines(boundary)
    if array.all():
        boundary = outlines_from_regions(array) != 0
        return boundary, labels_from_outlines(boundary)
    labels = array.copy()
    for first, second in (
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    ):
        a, b = array[first], array[second]
        labels[first][(a != b) & (a > 0) & (b > 0)] = 0
    return labels == 0, labels
