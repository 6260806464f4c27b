"""Post-processing: outlines from partitions, decoding of network outputs, markers and watershed."""

import numpy as np
import pytest
from conftest import assert_ta_topology
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from epyseg_ij import cells, kernels, postprocess
from epyseg_ij.metrics import seg_quality
from epyseg_ij.synth import STYLES, synth_epithelium
from epyseg_ij.targets import epyseg_targets


def voronoi(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape)
    nearest = cKDTree(rng.random((n, 2)) * shape).query(np.c_[yy.ravel(), xx.ravel()])[1]
    return nearest.reshape(shape) + 1


def test_outlines_from_regions_gives_one_cell_per_region():
    regions = voronoi((300, 400), 250)
    outlines = postprocess.outlines_from_regions(regions)
    labels = postprocess.labels_from_outlines(outlines)
    assert labels.max() == 250
    assert_ta_topology(outlines, labels)
    # each cell is its region, give or take the 1-px line between them
    assert seg_quality(labels, regions)["n_correct"] == 250


def test_outlines_follow_the_bond_ridge():
    regions = np.ones((20, 20), int)
    regions[:, 10:] = 2
    bonds = np.zeros((20, 20), np.float32)
    bonds[:, 10] = 1  # the ridge is on the right-hand pixel of the pair
    assert (np.nonzero(postprocess.outlines_from_regions(regions, bonds))[1] == 10).all()
    assert (np.nonzero(postprocess.outlines_from_regions(regions))[1] == 9).all()


def test_labels_switch_to_uint32_above_65535_cells():
    outlines = np.zeros((800, 800), np.uint8)
    outlines[::3] = 255
    outlines[:, ::3] = 255
    labels = postprocess.labels_from_outlines(outlines)
    assert labels.dtype == np.uint32 and labels.max() == 267 * 267


def noisy_maps(outlines, rng, blur=1.0, noise=0.08):
    maps = epyseg_targets(outlines).astype(np.float32)
    maps = ndi.gaussian_filter(maps, (blur, blur, 0)) + rng.normal(0, noise, maps.shape)
    return np.clip(maps, 0, 1).astype(np.float32)


def cells_from_maps(maps, outputs="epyseg7"):
    bonds, code = postprocess.decode(maps, outputs)
    markers = postprocess.choose_markers(code)
    regions = postprocess.flood(bonds, ndi.label(markers, postprocess.FOUR)[0])
    outlines = postprocess.outlines_from_regions(regions, bonds)
    return outlines, postprocess.labels_from_outlines(outlines)


def test_blurred_noisy_ground_truth_maps_decode_to_the_ground_truth():
    rng = np.random.default_rng(1)
    sample = synth_epithelium((384, 384), seed=3)
    outlines, labels = cells_from_maps(noisy_maps(sample.outlines, rng))
    assert_ta_topology(outlines, labels)
    score = seg_quality(labels, sample.labels)
    assert score["seg_quality"] >= 0.95, score


def test_seeds_split_cells_joined_by_a_gap_in_their_bond():
    outlines = np.zeros((40, 60), np.uint8)
    outlines[:, 30] = 255  # two cells
    maps = epyseg_targets(outlines).astype(np.float32)
    maps[15:25, :, :3] = 0  # a 10-px gap in the bond channels...
    maps[15:25, :, 3:5] = 1  # ...so the interiors of both cells join
    outlines_out, labels = cells_from_maps(maps)
    assert labels.max() == 2
    assert_ta_topology(outlines_out, labels)


def test_one_channel_bond_maps_decode_too():
    sample = synth_epithelium((256, 256), seed=5)
    rng = np.random.default_rng(0)
    maps = noisy_maps(sample.outlines, rng)[..., 1:2]  # a 3-px bond map
    outlines, labels = cells_from_maps(maps, "bonds")
    assert seg_quality(labels, sample.labels)["seg_quality"] >= 0.9


def test_flood_gives_the_cells_of_a_full_float_watershed():
    from skimage.segmentation import watershed

    rng = np.random.default_rng(2)
    sample = synth_epithelium((256, 256), seed=2)
    bonds, code = postprocess.decode(noisy_maps(sample.outlines, rng), "epyseg7")
    markers = ndi.label(postprocess.choose_markers(code), postprocess.FOUR)[0]
    fast = postprocess.flood(bonds, markers)
    full = watershed(bonds, markers, connectivity=1)
    assert (fast == full).mean() > 0.97
    cells = [postprocess.labels_from_outlines(postprocess.outlines_from_regions(r, bonds)) for r in (fast, full)]
    score = seg_quality(*cells)
    assert score["n_correct"] >= 0.99 * score["n_gt"]


def test_flood_goes_by_level_then_by_arrival():
    """The heap watershed's order (level, then first come): a valley goes to the marker that reaches it without
    climbing, and a plateau is shared half and half by the markers at its two ends."""
    labels = np.array([[1, 0, 0, 0, 2], [1, 0, 0, 0, 2]], np.int32)
    kernels.flood_levels(np.array([[0, 1, 1, 7, 0], [0, 5, 5, 5, 0]], np.uint8), labels)
    assert labels.tolist() == [[1, 1, 1, 2, 2], [1, 1, 1, 2, 2]]
    plateau = np.array([[1, 0, 0, 0, 0, 2]], np.int32)
    kernels.flood_levels(np.array([[0, 5, 5, 5, 5, 0]], np.uint8), plateau)
    assert plateau.tolist() == [[1, 1, 1, 2, 2, 2]]
    unreachable = np.array([[1, 0, 0]], np.int32)
    kernels.flood_levels(np.zeros((1, 3), np.uint8), unreachable)
    assert unreachable.tolist() == [[1, 1, 1]]
    nothing = np.zeros((2, 2), np.int32)
    kernels.flood_levels(np.zeros((2, 2), np.uint8), nothing)
    assert not nothing.any()


def test_thinned_lines_each_separate_cells():
    """After thinning, no line pixel borders only one cell, and every region of 6 x 6 px blocks stays one cell."""
    rng = np.random.default_rng(4)
    blocks = np.repeat(np.repeat(rng.integers(0, 5, (20, 20)), 6, 0), 6, 1)
    regions = ndi.label(blocks == 0, postprocess.FOUR)[0]
    for value in range(1, 5):  # each connected patch of blocks a region of its own
        patches, n = ndi.label(blocks == value, postprocess.FOUR)
        regions[patches > 0] = patches[patches > 0] + regions.max()
    outlines = postprocess.outlines_from_regions(regions, rng.random(regions.shape).astype(np.float32))
    labels = postprocess.labels_from_outlines(outlines)
    padded = np.pad(labels.astype(np.int64), 1, constant_values=0)
    ys, xs = np.nonzero(outlines)
    around = np.stack([padded[ys + 1 + dy, xs + 1 + dx] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))])
    cells_around = [set(column[column > 0]) for column in around.T]
    assert all(len(c) != 1 for c in cells_around)
    assert labels.max() == len(np.unique(regions))
    assert_ta_topology(outlines, labels)


def test_histogram_counts_like_bincount_without_its_copy():
    rng = np.random.default_rng(0)
    for dtype in (np.uint8, np.uint16):
        image = rng.integers(0, np.iinfo(dtype).max, (50, 70), endpoint=True).astype(dtype)
        levels = np.iinfo(dtype).max + 1
        for view in (image, image[::2, 3:]):
            assert (kernels.histogram(view, levels) == np.bincount(view.ravel(), minlength=levels)).all()
    with pytest.raises(ValueError, match="outside"):  # a value past the counts is refused, not written past them
        kernels.histogram(np.array([[3, 4]], np.uint8), 4)


def test_regions_behind_a_weak_interface_merge():
    regions = np.repeat(np.array([[1] * 10 + [2] * 10 + [3] * 10]), 8, axis=0)
    bonds = np.zeros(regions.shape, np.float32)
    bonds[:, 9:11] = 0.3  # a faint line between 1 and 2
    bonds[:, 19:21] = 0.9  # a real bond between 2 and 3
    table = postprocess.merge_table(*postprocess.interfaces(regions, bonds, 3), 3, below=0.5)
    assert table[0] == 0 and table[1] == table[2] != table[3]


def test_interfaces_sum_every_pixel_pair_of_a_window():
    rng = np.random.default_rng(5)
    regions = np.kron(rng.integers(0, 300, (8, 10)), np.ones((5, 5), np.int32))  # blocks, label 0 among them
    bonds, image = rng.random((2, 40, 50), dtype=np.float32)
    n, window = int(regions.max()), (slice(7, 33), slice(12, None))
    expected = {}  # key -> [bond sum, pairs, image sum], pair by pair
    for y in range(7, 33):
        for x in range(12, 50):
            for yy, xx in ((y + 1, x), (y, x + 1)):
                if yy < 40 and xx < 50 and regions[y, x] != regions[yy, xx]:
                    a, b = sorted((int(regions[y, x]), int(regions[yy, xx])))
                    sums = expected.setdefault(a * (n + 1) + b, [0.0, 0, 0.0])
                    sums[0] += max(bonds[y, x], bonds[yy, xx])
                    sums[1] += 1
                    sums[2] += max(image[y, x], image[yy, xx])
    keys, bond_sums, counts, image_sums = postprocess.interfaces(regions, bonds, n, window, image)
    assert keys.tolist() == sorted(expected) and len(keys) > 80
    assert np.allclose(np.transpose([bond_sums, counts, image_sums]), [expected[k] for k in sorted(expected)])
    assert np.array_equal(postprocess.interfaces(regions, bonds, n, window)[2], counts)


def test_parallel_bands_give_the_cells_of_one_band():
    sample = synth_epithelium((640, 500), seed=8)
    maps = noisy_maps(sample.outlines, np.random.default_rng(3))
    results = []
    for workers in (1, 2):
        bonds, code = postprocess.decode(maps, "epyseg7")
        assert len(cells.split_plane(*bonds.shape, workers)) == workers
        results.append(cells.find_cells(bonds, cells.choose_markers(code, workers), workers=workers))
    for outlines, labels in results:
        assert_ta_topology(outlines, labels)
        assert seg_quality(labels, sample.labels)["seg_quality"] > 0.93
    assert (results[0][0] == results[1][0]).mean() > 0.999


def test_faint_interfaces_are_those_the_image_does_not_show():
    """Four regions side by side; the image shows the membranes 1|2 and 3|4 but nothing between 2 and 3."""
    regions = np.repeat(np.repeat(np.arange(1, 5), 10)[None, :], 12, axis=0)
    image = np.full(regions.shape, 10.0)
    image[:, [9, 10, 29, 30]] = 50.0  # bright membranes at the 1|2 and 3|4 interfaces only
    bonds = np.full(regions.shape, 0.6)  # the network is unsure everywhere
    keys, bond_sums, counts, image_sums = postprocess.interfaces(regions, bonds, 4, image=image)
    interior = np.array([0, 10, 10, 10, 10], float)
    faint = postprocess.faint_interfaces(keys, bond_sums, counts, image_sums, interior, 4, faint=0.3, bonds_below=0.75)
    assert faint.tolist() == [2 * 5 + 3]
    sure = postprocess.faint_interfaces(keys, bond_sums, counts, image_sums, interior, 4, faint=0.3, bonds_below=0.5)
    assert sure.size == 0  # a boundary the network is sure of is kept, whatever the image


def test_find_cells_merges_across_a_false_boundary_the_image_does_not_show():
    sample = synth_epithelium((128, 128), seed=4, style=STYLES["clean"])
    bonds = (sample.outlines > 0).astype(np.float32)
    cut = 64  # a straight false line through the tissue, half-believed by the network
    bonds[:, cut] = np.maximum(bonds[:, cut], 0.6)
    code = np.where(bonds > 0.5, 0, postprocess.INTERIOR | postprocess.SEED).astype(np.uint8)
    code[:, cut] = 0
    markers = cells.choose_markers(code.copy())
    _, plain = cells.find_cells(bonds, markers)
    _, merged = cells.find_cells(bonds, markers, image=sample.image, faint=(0.3, 0.75))
    assert merged.max() < plain.max() - 3  # the cells cut in two by the line are whole again
    truth = sample.labels.max()
    assert abs(int(merged.max()) - int(truth)) < abs(int(plain.max()) - int(truth))


def test_a_min_size_above_every_cell_leaves_one_cell():
    sample = synth_epithelium((96, 96), seed=6, style=STYLES["clean"])
    bonds = (sample.outlines > 0).astype(np.float32)
    code = np.where(bonds > 0.5, 0, postprocess.INTERIOR | postprocess.SEED).astype(np.uint8)
    _, labels = cells.find_cells(bonds, cells.choose_markers(code), min_size=10**30)
    assert labels.max() == 1
