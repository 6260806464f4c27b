"""Tiled prediction: windows, mirror padding, normalisation, test-time augmentation, seamless stitching."""

import numpy as np
import pytest

from epyseg_ij import predict
from epyseg_ij.errors import InputError


@pytest.mark.parametrize("n", [1, 7, 31, 32, 199, 256, 257, 600, 1000])
@pytest.mark.parametrize("tile,margin", [(256, 16), (64, 16), (100, 0), (16, 8)])
def test_windows_cover_the_axis_with_network_friendly_sizes(n, tile, margin):
    length, starts = predict.axis_windows(n, tile, margin)
    size = min(tile, n)
    assert length % 32 == 0 and length >= size + 2 * margin
    covered = np.zeros(n, int)
    for s in starts:
        covered[s : s + size] += 1
    assert covered.min() >= 1 and starts[-1] + size == n


def test_read_window_mirrors_like_padding_the_whole_plane():
    plane = np.arange(7 * 9).reshape(7, 9)
    padded = np.pad(plane, 40, mode="symmetric")
    for y, x, h, w in [(-3, -2, 10, 12), (4, 5, 8, 8), (-20, -30, 64, 64), (0, 0, 7, 9)]:
        np.testing.assert_array_equal(
            predict.read_window(plane, y, x, h, w), padded[40 + y : 40 + y + h, 40 + x : 40 + x + w]
        )


def test_minmax_and_percentile_normalisation():
    plane = np.arange(10_000, dtype=np.uint16).reshape(100, 100)
    assert predict.intensity_range(plane)(np.array([0, 9999])).tolist() == [0, 1]
    low, high = predict.percentiles(plane, (2, 99.8))
    assert abs(low - np.percentile(plane, 2)) <= 1 and abs(high - np.percentile(plane, 99.8)) <= 1
    clipped = predict.intensity_range(plane, "percentile")(plane)
    assert clipped.min() == 0 and clipped.max() == 1
    assert predict.intensity_range(plane, invert=True)(np.array([0]))[0] == 1
    with pytest.raises(InputError, match="NaN"):
        predict.intensity_range(np.array([[0, np.nan]]))
    with pytest.raises(InputError, match="normalization"):
        predict.intensity_range(plane, "zscore")


def test_tta_views_invert_exactly():
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    views = predict.tta_transforms("flip")
    assert len(views) == 8 and len(predict.tta_transforms("epyseg", x[..., 0], predict.Intensity(0, 1))) == 13
    assert len({forward(x).tobytes() for forward, _ in views}) == 8
    for forward, inverse in views:
        np.testing.assert_array_equal(inverse(forward(x)), x)


def run(plane, model, tile, overlap, tta="none"):
    tiling = predict.Tiling(tile, overlap, batch=3)
    transforms = predict.tta_transforms(tta)
    rows = list(predict.predict_rows(plane, model.predict_batch, tiling, predict.intensity_range(plane), transforms))
    assert [y for y, _ in rows] == list(np.cumsum([0] + [len(r) for _, r in rows[:-1]]))
    return np.concatenate([r for _, r in rows])


def test_tiled_equals_untiled_when_the_margin_exceeds_the_receptive_field(local_model):
    plane = np.random.default_rng(1).integers(0, 4000, (150, 230)).astype(np.uint16)
    whole = run(plane, local_model, tile=512, overlap=16)
    tiled = run(plane, local_model, tile=48, overlap=16)
    assert whole.shape == (150, 230, 7)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_one_tile_equals_the_network_on_the_mirror_padded_image(vgg16_path):
    from epyseg_ij import models

    model = models.load(vgg16_path)
    plane = np.random.default_rng(2).random((100, 120)).astype(np.float32)
    tiled = run(plane, model, tile=256, overlap=32)
    padded = np.pad(plane, ((16, 160 - 100 - 16), (16, 160 - 120 - 16)), mode="symmetric")
    direct = model.keras.predict(predict.intensity_range(plane)(padded)[None, ..., None], verbose=0)[0]
    np.testing.assert_allclose(tiled, direct[16:116, 16:136], atol=1e-5)


def test_flip_tta_averages_the_eight_views(local_model):
    plane = np.random.default_rng(3).random((64, 64)).astype(np.float32)
    averaged = run(plane, local_model, tile=64, overlap=0, tta="flip")
    x = predict.intensity_range(plane)(plane)[None, ..., None]
    by_hand = np.mean(
        [inv(local_model.predict_batch(f(x).copy())) for f, inv in predict.tta_transforms("flip")], axis=0
    )
    np.testing.assert_allclose(averaged, by_hand[0], atol=1e-6)
