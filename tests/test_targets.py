"""EPySeg-style 7-channel training targets."""

import os

import numpy as np
import pytest
from scipy import ndimage as ndi

from epyseg_ij import models, targets
from epyseg_ij.postprocess import FOUR, labels_from_outlines
from epyseg_ij.synth import synth_epithelium


@pytest.fixture(scope="module")
def tissue():
    return synth_epithelium((192, 192), seed=3).outlines


def test_channels_follow_their_definitions(tissue):
    t = targets.epyseg_targets(tissue)
    assert t.shape == (*tissue.shape, 7) and t.dtype == np.uint8 and set(np.unique(t)) <= {0, 1}
    bonds = tissue > 0
    np.testing.assert_array_equal(t[..., 0], bonds)
    np.testing.assert_array_equal(t[..., 1], ndi.binary_dilation(bonds, FOUR))
    np.testing.assert_array_equal(t[..., 2], ndi.binary_dilation(bonds, FOUR, iterations=2))
    np.testing.assert_array_equal(t[..., 3], 1 - t[..., 1])
    np.testing.assert_array_equal(t[..., 4], 1 - t[..., 2])
    np.testing.assert_array_equal(t[..., 6], 1 - t[..., 5])
    # Thicker bond channels grow as in EPySeg's measurements (about 1 : 3 : 5 px).
    fractions = t.reshape(-1, 7).mean(axis=0)
    assert fractions[0] < fractions[1] < fractions[2]


def test_one_central_seed_per_cell(tissue):
    seed = targets.seeds(tissue)
    labels = labels_from_outlines(tissue)
    assert not (seed & (tissue > 0)).any(), "seeds lie inside cells"
    pieces, n = ndi.label(seed, FOUR)
    cells_of_pieces = ndi.maximum(labels, pieces, np.arange(1, n + 1))
    assert len(set(cells_of_pieces)) == n, "at most one seed per cell"
    assert n == labels.max(), "every cell has a seed"
    # Seeds are compact cores: a small part of each cell, deep inside it.
    assert 0.05 < seed.sum() / (labels > 0).sum() < 0.25
    depth = ndi.distance_transform_edt(labels > 0)
    assert depth[seed].mean() > 2 * depth[(labels > 0) & ~seed].mean()


def test_seed_of_a_square_cell_is_its_centre():
    outlines = np.zeros((41, 41), np.uint8)
    outlines[[0, -1], :] = outlines[:, [0, -1]] = 255
    seed = targets.seeds(outlines)
    ys, xs = np.nonzero(seed)
    assert seed[20, 20] and ys.mean() == pytest.approx(20) and xs.mean() == pytest.approx(20)
    assert 20 < seed.sum() < 0.3 * 39 * 39


def test_packed_round_trip(tissue):
    packed = targets.packed_targets(tissue)
    assert packed.dtype == np.uint8 and packed.shape == tissue.shape
    np.testing.assert_array_equal(targets.unpack(packed), targets.epyseg_targets(tissue))
    np.testing.assert_array_equal(targets.unpack(packed, np.float32), targets.epyseg_targets(tissue))


def test_cache_lives_in_the_cache_dir_and_is_reused(tissue):
    cache = targets.cache_dir()
    assert cache == models.home() / "targets"
    before = set(cache.glob("*.npy")) if cache.exists() else set()
    first = targets.cached_packed_targets(tissue)
    new = set(cache.glob("*.npy")) - before
    assert len(new) == 1
    (path,) = new
    # A second call reads the file instead of recomputing: prove it by planting a marker value in the entry.
    planted = first.copy()
    planted[0, 0] = 127
    np.save(path, planted)
    assert targets.cached_packed_targets(tissue)[0, 0] == 127
    assert targets.cached_packed_targets(tissue, cache=False)[0, 0] == first[0, 0]
    # A different mask gets a different entry.
    other = tissue.copy()
    other[5, :] = 255
    targets.cached_packed_targets(other)
    assert len(set(cache.glob("*.npy")) - before) == 2


def test_unwritable_cache_still_gives_targets(tissue, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "targets").write_text("a file where the cache folder should be")
    monkeypatch.setenv("EPYSEG_IJ_HOME", str(home))
    packed = targets.cached_packed_targets(tissue)
    np.testing.assert_array_equal(packed, targets.packed_targets(tissue))
    assert sorted(os.listdir(home)) == ["targets"]
