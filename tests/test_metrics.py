"""Metrics on hand-made cases with known answers, on the EpiTools reference segmentations, and on bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from epyseg_ij.errors import InputError
from epyseg_ij.metrics import as_labels, as_outlines, evaluate, evaluate_files, pixel_iou, seg_quality
from epyseg_ij.postprocess import labels_from_outlines, outlines_from_regions

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "epitools_wingdisc" / "derived"
# README of the EpiTools sample: 4-connected cells in each frame's TA mask.
TA_CELLS = {0: 89, 1: 80, 2: 83, 3: 82, 4: 81, 5: 80, 6: 77, 7: 69}
KEYS = ["pixel_iou", "seg_quality", "n_gt", "n_pred", "n_correct", "n_over", "n_under"]


def grid(rows=(20, 40), cols=(20, 40), shape=(60, 60)) -> np.ndarray:
    """TA outline mask with full-length straight boundaries at the given rows and columns."""
    mask = np.zeros(shape, np.uint8)
    mask[list(rows), :] = 255
    mask[:, list(cols)] = 255
    return mask


def test_perfect_match_scores_one():
    gt = grid()
    result = evaluate(gt, gt)
    assert result == {
        "pixel_iou": 1.0,
        "seg_quality": 1.0,
        "n_gt": 9,
        "n_pred": 9,
        "n_correct": 9,
        "n_over": 0,
        "n_under": 0,
    }


def test_split_cell_is_one_over_segmentation():
    pred = grid()
    pred[:20, 10] = 255  # cuts the top-left GT cell in two
    result = evaluate(pred, grid())
    assert (result["n_correct"], result["n_over"], result["n_under"], result["n_pred"]) == (8, 1, 0, 10)
    assert result["seg_quality"] == pytest.approx((8 - 1) / 9)


def test_merged_cells_are_one_under_segmentation():
    pred = grid()
    pred[20, :20] = 0  # removes the boundary between the two left-most GT cells of the first two rows
    result = evaluate(pred, grid())
    assert (result["n_correct"], result["n_over"], result["n_under"], result["n_pred"]) == (7, 0, 1, 8)
    assert result["seg_quality"] == pytest.approx((7 - 1) / 9)


def test_shifted_boundary_still_matches_but_misses_every_pixel():
    gt, pred = grid(rows=(), cols=(30,)), grid(rows=(), cols=(33,))
    result = evaluate(pred, gt)
    assert result["pixel_iou"] == 0.0
    assert (result["n_correct"], result["seg_quality"]) == (2, 1.0)
    far = evaluate(grid(rows=(), cols=(43,)), gt)  # IoU left 30/43 = 0.698, right 16/29 = 0.55
    assert far["n_correct"] == 0
    assert far["n_over"] == far["n_under"] == 0


def test_empty_prediction():
    gt = labels_from_outlines(grid())
    no_cells = seg_quality(np.zeros_like(gt), gt)
    assert (no_cells["n_pred"], no_cells["n_correct"], no_cells["seg_quality"]) == (0, 0, 0.0)
    # An outline mask without boundaries is one cell covering all: it holds every GT cell, one under-segmentation.
    one_cell = evaluate(np.zeros_like(grid()), grid())
    assert (one_cell["n_pred"], one_cell["n_under"], one_cell["pixel_iou"]) == (1, 1, 0.0)
    assert one_cell["seg_quality"] == pytest.approx(-1 / 9)


def test_outline_mask_and_label_image_inputs_agree():
    rng = np.random.default_rng(1)
    regions = (rng.permutation(144) + 1).reshape(12, 12).repeat(8, 0).repeat(8, 1)  # a partition without 0
    gt = grid(rows=(30, 60), cols=(45,), shape=(96, 96))
    outlines = outlines_from_regions(regions)
    from_regions = evaluate(regions, gt)
    assert from_regions["n_pred"] == 144
    assert from_regions == evaluate(outlines, gt)
    assert from_regions == evaluate(outlines > 0, gt)  # bool mask
    assert from_regions == evaluate(outlines // 255, gt)  # 0/1 mask
    assert from_regions == evaluate(labels_from_outlines(outlines), gt)  # label image with 0 on boundaries
    assert from_regions == evaluate(labels_from_outlines(outlines).astype(np.float32), gt)
    assert from_regions == evaluate(outlines, labels_from_outlines(gt).astype(np.uint32) * 1000)  # sparse ids


def test_as_labels_and_as_outlines_follow_the_documented_rule():
    # 0/1 values are an outline mask, even though they could be read as a one-cell label image.
    assert as_labels(np.array([[0, 1, 0, 0]])).tolist() == [[1, 0, 2, 2]]
    # A label image with 0: cells keep their ids; two touching cells get a boundary on the left one.
    labels = np.array([[3, 3, 9, 9, 0, 4]])
    assert as_labels(labels).tolist() == [[3, 0, 9, 9, 0, 4]]
    assert as_outlines(labels).tolist() == [[0, 255, 0, 0, 255, 0]]
    # A partition without 0 gets 1-px boundaries between its regions.
    assert as_outlines(np.array([[2, 2, 5, 5]])).tolist() == [[0, 255, 0, 0]]


def test_pixel_iou_counts_exact_pixels():
    a = np.zeros((4, 4), np.uint8)
    b = np.zeros((4, 4), np.uint8)
    a[1, :] = 255
    b[1, :2] = 255
    b[2, :2] = 255
    assert pixel_iou(a, b) == pytest.approx(2 / 6)
    assert pixel_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0


def test_seg_quality_on_large_sparse_ids_equals_compact_ids():
    gt = labels_from_outlines(grid()).astype(np.uint64)
    pred = gt.copy()
    pred[:20, 10:20] = 77  # a new cell inside GT cell 1
    compact = seg_quality(pred, gt)
    sparse = seg_quality(pred * 10**12, gt * 10**12 + (gt > 0))
    assert compact == sparse
    assert (compact["n_over"], compact["n_correct"]) == (1, 8)


def test_results_are_plain_json_numbers():
    result = evaluate(grid(cols=(20,)), grid())
    assert list(result) == KEYS
    assert [type(result[k]) for k in KEYS] == [float, float, int, int, int, int, int]
    assert json.loads(json.dumps(result)) == result


def test_bad_arrays_are_refused():
    with pytest.raises(InputError, match="shape mismatch"):
        evaluate(grid(), grid(shape=(60, 61)))
    with pytest.raises(InputError, match="2D"):
        evaluate(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)))
    with pytest.raises(InputError, match="no cell"):
        evaluate(grid(), np.full((60, 60), 255, np.uint8))
    with pytest.raises(InputError, match="whole numbers"):
        evaluate(grid() + 0.5, grid())
    with pytest.raises(InputError, match="negative"):
        seg_quality(-labels_from_outlines(grid()).astype(np.int32), labels_from_outlines(grid()))


def test_evaluate_files_reads_tiffs_and_refuses_bad_files(tmp_path):
    pred, gt = tmp_path / "pred.tif", tmp_path / "gt.tif"
    tifffile.imwrite(pred, grid(cols=(20,))[np.newaxis], imagej=True)  # ImageJ stack of one slice
    tifffile.imwrite(gt, labels_from_outlines(grid()))
    assert evaluate_files(pred, gt) == evaluate(grid(cols=(20,)), grid())
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="cannot read"):
        evaluate_files(garbage, gt)
    with pytest.raises(InputError, match="no such file"):
        evaluate_files(tmp_path / "missing.tif", gt)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.zeros((2, 60, 60), np.uint8))
    with pytest.raises(InputError, match="one 2D image"):
        evaluate_files(stack, gt)
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((30, 60), np.uint8))
    with pytest.raises(InputError, match="shape mismatch"):
        evaluate_files(small, gt)


needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"EpiTools sample data not found at {DATA}")


@needs_data
@pytest.mark.parametrize("frame", sorted(TA_CELLS))
def test_epitools_ta_masks_agree_with_their_label_images(frame):
    ta = DATA / "ta" / f"frame_{frame:02d}" / "handCorrection.tif"
    labels = DATA / "labels" / f"frame_{frame:02d}.tif"
    result = evaluate_files(labels, ta)
    assert result["n_gt"] == TA_CELLS[frame]
    assert result["seg_quality"] > 0.95
    assert result["pixel_iou"] > 0.6  # both are 1-px boundaries of the same partition, thinned differently


@needs_data
def test_epitools_distant_frames_score_clearly_lower():
    same = evaluate_files(DATA / "labels" / "frame_00.tif", DATA / "ta" / "frame_00" / "handCorrection.tif")
    distant = evaluate_files(DATA / "labels" / "frame_07.tif", DATA / "ta" / "frame_00" / "handCorrection.tif")
    assert distant["seg_quality"] < same["seg_quality"] - 0.3
    assert distant["pixel_iou"] < same["pixel_iou"] / 2


def test_exclude_border_scores_inner_cells_only():
    gt = np.ones((30, 30), np.uint16)  # one big "border region" around...
    gt[10:20, 10:20] = 2  # ...one inner cell
    pred = np.zeros((30, 30), np.uint16)
    pred[:, :15], pred[:, 15:] = 1, 2  # two border cells over the border region
    pred[10:20, 10:20] = 3
    assert evaluate(pred, gt)["n_over"] == 1
    inner = evaluate(pred, gt, exclude_border=True)
    assert inner["n_gt"] == 1 and inner["n_correct"] == 1 and inner["seg_quality"] == 1.0
