"""segment(): real networks on real and synthetic images; topology, stacks, dtypes, options and bad input."""

import numpy as np
import pytest
import tifffile
from conftest import EPITOOLS, SAMPLE, assert_ta_topology, needs_data

import epyseg_ij
from epyseg_ij import Cancelled, InputError, ModelError
from epyseg_ij.synth import synth_epithelium


@pytest.fixture(scope="module")
def frame():
    return tifffile.imread(SAMPLE)


@pytest.mark.parametrize("model", ["local", "classical"])
def test_outputs_follow_the_tissue_analyzer_convention(frame, local_model, model):
    result = epyseg_ij.segment(frame, local_model if model == "local" else model, tile=128)
    assert result.outlines.shape == result.labels.shape == result.bonds.shape == frame.shape
    assert result.labels.dtype == np.uint16 and result.bonds.dtype == np.float32
    assert 0 <= result.bonds.min() and result.bonds.max() <= 1
    assert result.axes == "YX" and result.n_cells == [int(result.labels.max())] and result.n_cells[0] > 5
    assert_ta_topology(result.outlines, result.labels)


def test_classical_baseline_finds_the_epitools_cells():
    from epyseg_ij.metrics import evaluate

    data = needs_data(EPITOOLS)
    image, gt = tifffile.imread(data / "images/frame_03.tif"), tifffile.imread(data / "labels/frame_03.tif")
    scores = evaluate(epyseg_ij.segment(image, "classical").labels, gt, exclude_border=True)  # the reference
    assert scores["seg_quality"] > 0.8 and abs(scores["n_pred"] - scores["n_gt"]) < 8  # leaves border cells out


def test_stacks_keep_plane_order_and_match_single_planes(frame, local_model):
    stack = np.stack([frame, frame[::-1], np.roll(frame, 50, axis=1)])
    result = epyseg_ij.segment(stack, local_model)
    assert result.axes == "ZYX" and result.labels.shape == stack.shape and len(result.n_cells) == 3
    assert min(result.n_cells) > 5
    for plane, outlines in zip(stack, result.outlines, strict=True):
        np.testing.assert_array_equal(outlines, epyseg_ij.segment(plane, local_model).outlines)


def test_hyperstack_channel_is_chosen_and_removed(frame, local_model):
    other = np.full_like(frame, 7)
    hyper = np.stack([np.stack([other, frame])] * 2)[np.newaxis]  # T=1, Z=2, C=2, Y, X
    result = epyseg_ij.segment(hyper, local_model, axes="TZCYX", channel=1)
    assert result.axes == "TZYX" and result.outlines.shape == (1, 2, *frame.shape)
    np.testing.assert_array_equal(result.outlines[0, 1], epyseg_ij.segment(frame, local_model).outlines)


@pytest.mark.parametrize("layout", ["YXC", "CYX"])
def test_channel_first_or_last(frame, local_model, layout):
    image = np.stack([frame // 2, frame], axis=-1 if layout == "YXC" else 0)
    expected = epyseg_ij.segment(frame, local_model).outlines
    np.testing.assert_array_equal(epyseg_ij.segment(image, local_model, channel=1).outlines, expected)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32, np.float64, np.int64])
def test_any_dtype_gives_the_same_cells(frame, local_model, dtype):
    reference = epyseg_ij.segment(frame, local_model).outlines
    rescaled = (frame.astype(np.float64) * 3 + 100).astype(dtype)  # min-max normalisation removes the affine map
    assert (epyseg_ij.segment(rescaled, local_model).outlines == reference).mean() > 0.999


def test_invert_reads_dark_membranes(frame, local_model):
    reference = epyseg_ij.segment(frame, local_model).outlines
    assert (epyseg_ij.segment(255 - frame, local_model, invert=True).outlines == reference).mean() > 0.999


def test_constant_and_tiny_images(local_model):
    constant = epyseg_ij.segment(np.full((50, 60), 9, np.uint8), local_model)
    assert constant.n_cells == [0] and not constant.labels.any()
    tiny = epyseg_ij.segment(np.random.default_rng(0).random((9, 13)), local_model)
    assert tiny.outlines.shape == (9, 13)


def test_min_size_merges_small_cells(frame):
    plain = epyseg_ij.segment(frame, "classical")
    merged = epyseg_ij.segment(frame, "classical", min_size=60)
    areas = lambda labels: np.bincount(labels.ravel())[1:]  # noqa: E731
    assert areas(plain.labels).min() < 60 and merged.n_cells[0] < plain.n_cells[0]
    assert areas(merged.labels).min() > areas(plain.labels).min()
    assert_ta_topology(merged.outlines, merged.labels)


def test_band_processing_matches_one_band(monkeypatch):
    from epyseg_ij import cells

    image = synth_epithelium((400, 300), seed=4).image
    whole = epyseg_ij.segment(image, "classical")
    monkeypatch.setattr(cells, "TILE_SIDE", 104)  # 4 x 3 tiles with 64 px of context
    banded = epyseg_ij.segment(image, "classical")
    assert banded.n_cells[0] > 200
    assert_ta_topology(banded.outlines, banded.labels)
    assert (banded.outlines == whole.outlines).mean() > 0.999


def test_progress_reaches_the_total_and_can_cancel(frame, local_model):
    calls = []
    epyseg_ij.segment(frame, local_model, tile=64, batch=2, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] == 16 and [d for d, _ in calls] == sorted(d for d, _ in calls)

    def cancel(done, total):
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        epyseg_ij.segment(frame, local_model, tile=64, progress=cancel)


@pytest.mark.parametrize(
    "image,options,message",
    [
        (np.zeros((40, 40, 3)), {}, "3 channels"),
        (np.zeros((40, 40, 3)), {"channel": 5}, "channel 6 does not exist"),
        (np.zeros((40, 40)), {"channel": 1}, "single channel"),
        (np.full((40, 40), np.inf), {}, "NaN or infinite"),
        (np.zeros(40), {}, "dimensions"),
        (np.zeros((2, 2, 2, 2, 2, 2)), {}, "dimensions"),
        (np.zeros((40, 40), complex), {}, "not a usable image"),
        (np.zeros((40, 40)), {"axes": "ZYX"}, "do not fit"),
        (np.zeros((40, 40)), {"tile": 8}, "tile must be an integer from 16"),
        (np.zeros((40, 40)), {"tta": "max"}, "tta must be one of"),
    ],
)
def test_bad_input_is_a_clear_error(image, options, message, local_model):
    with pytest.raises(InputError, match=message):
        epyseg_ij.segment(image, local_model, **options)


def test_unknown_model_names_the_known_ones(frame):
    with pytest.raises(ModelError, match="unknown model 'nope'.*Linknet-vgg16-sigmoid-v2"):
        epyseg_ij.segment(frame, "nope")


def test_the_model_card_turns_on_the_faint_interface_merge(local_model):
    import dataclasses

    from epyseg_ij import models
    from epyseg_ij.cards import ModelCard

    card = ModelCard("x", merge_faint=[0.3, 0.75])
    assert ModelCard.from_json(card.to_json()).merge_faint == (0.3, 0.75)
    for bad in ([0.3], "abc", [0.3, 2.0], [float("nan"), 0.5]):
        with pytest.raises(ModelError, match="merge_faint"):
            ModelCard("x", merge_faint=bad)
    sample = synth_epithelium((160, 160), seed=21)
    noisy = models.Model(local_model.keras, local_model.card, None)
    merging = models.Model(local_model.keras, dataclasses.replace(local_model.card, merge_faint=(0.9, 1.0)), None)
    plain, merged = epyseg_ij.segment(sample.image, noisy), epyseg_ij.segment(sample.image, merging)
    assert merged.n_cells[0] < plain.n_cells[0]  # the merge ran: interfaces it judged faint are gone
    inverted = epyseg_ij.segment(sample.image.max() - sample.image, merging, invert=True)
    assert inverted.n_cells[0] == merged.n_cells[0]  # dark membranes are read the other way round


def test_large_cells_are_segmented_again_at_a_reduced_size():
    """Cells about 80 px across (the held-out style at 3 times its size): the card's max_cell_diameter has the plane
    segmented at a quarter of its size and the cells found again at full size, 1 px outlines, progress counted."""
    import dataclasses

    from epyseg_ij import models, rescale
    from epyseg_ij.metrics import evaluate
    from epyseg_ij.postprocess import labels_from_outlines
    from epyseg_ij.synth import HELDOUT

    model = models.load("default")
    assert model.card.max_cell_diameter == 40.0
    off = dataclasses.replace(model, card=dataclasses.replace(model.card, max_cell_diameter=None))
    style = dataclasses.replace(HELDOUT, cell_diameter=78.0, junction_width=(7.5, 15.0), blur_sigma=4.2)
    sample = synth_epithelium((512, 512), seed=(77, 0), style=style)
    seen = []
    result = epyseg_ij.segment(sample.image, model, progress=lambda done, total: seen.append((done, total)))
    plain = epyseg_ij.segment(sample.image, off)
    assert rescale.median_diameter(plain.labels) > 60
    assert evaluate(result.labels, sample.labels)["seg_quality"] > evaluate(plain.labels, sample.labels)["seg_quality"]
    assert evaluate(result.labels, sample.labels)["seg_quality"] > 0.75
    assert np.array_equal(result.labels, labels_from_outlines(result.outlines))  # the TA convention at full size
    assert result.bonds.shape == sample.image.shape and 0 <= result.bonds.min() and result.bonds.max() <= 1
    assert seen[-1][0] == seen[-1][1] > seen[0][1]  # the reduced plane's tiles were added to the job, and done


def test_cells_of_usual_size_are_segmented_once(frame):
    import dataclasses

    from epyseg_ij import models

    model = models.load("default")
    off = dataclasses.replace(model, card=dataclasses.replace(model.card, max_cell_diameter=None))
    seen = []
    result = epyseg_ij.segment(frame, model, progress=lambda done, total: seen.append(total))
    assert np.array_equal(result.labels, epyseg_ij.segment(frame, off).labels)
    assert len(set(seen)) == 1  # no work was added
