"""How training tiles are drawn: per-folder weights and replay of synthetic epithelia."""

import numpy as np
import pytest

from epyseg_ij import augment, data, replay, targets
from epyseg_ij.errors import InputError
from epyseg_ij.synth import write_dataset


def _flat(name: str, value: float, weight: float = 1.0, size: int = 64) -> data.TrainingImage:
    """An image of one grey value, so that a tile tells which image it came from."""
    outlines = np.zeros((size, size), np.uint8)
    outlines[size // 2] = 255
    image = np.full((size, size), value, np.float32)
    return data.TrainingImage(name, augment.prepare(image, outlines, targets.packed_targets(outlines)), weight)


def _share_of_bright(images, n_batches=50) -> float:
    batches = data.tile_batches(images, 32, 8, augment.NONE, seed=1)
    means = np.concatenate([next(batches)[0].mean(axis=(1, 2, 3)) for _ in range(n_batches)])
    return float(np.mean(means > 0.5))


def test_weights_set_how_often_images_are_drawn():
    assert 0.4 < _share_of_bright([_flat("dark", 0.2), _flat("bright", 0.8)]) < 0.6
    assert 0.82 < _share_of_bright([_flat("dark", 0.2), _flat("bright", 0.8, weight=9)]) < 0.97


def test_replay_takes_its_share_of_the_tiles():
    user = [_flat("user", 0.2, size=96), _flat("user2", 0.2, weight=3)]
    mixed = replay.mix(user, [_flat("synthetic", 0.8, size=48)], 0.25)
    assert 0.18 < _share_of_bright(mixed, 100) < 0.32
    assert replay.mix(user, [_flat("synthetic", 0.8)], 0) == user


def test_replay_images_are_real_synthetic_epithelia():
    images = replay.synthetic_images("percentile", tile=32, n=2)
    assert [im.shape for im in images] == [(64, 64), (64, 64)]
    again = replay.synthetic_images("percentile", tile=32, n=2)
    x, y = next(data.tile_batches(images, 32, 2, augment.NONE, seed=0))
    x2, _ = next(data.tile_batches(again, 32, 2, augment.NONE, seed=0))
    np.testing.assert_array_equal(x, x2)  # reproducible
    assert 0 < y[..., 0].mean() < 0.5, "tiles hold bonds and cells"


def test_folder_weights(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_dataset(a, 2, (32, 32), seed=1)
    write_dataset(b, 1, (32, 32), seed=2)
    pairs = data.find_pairs([a, b], weights=[1, 4.5])
    assert [p.weight for p in pairs] == [1, 1, 4.5]
    assert data.load_pairs(pairs[2:])[0].weight == 4.5


@pytest.mark.parametrize(
    "weights, message",
    [([1], "1 given for 2 data folder"), ([1, 0], r"weights\[1\] must be"), ([1, "x"], r"weights\[1\] must be"),
     (2, "a list of numbers"), ([1, float("nan")], r"weights\[1\] must be")],
)  # fmt: skip
def test_bad_weights(tmp_path, weights, message):
    for name in "ab":
        write_dataset(tmp_path / name, 1, (32, 32), seed=1)
    with pytest.raises(InputError, match=message):
        data.find_pairs([tmp_path / "a", tmp_path / "b"], weights=weights)
