"""Training data: discovery, mask checks, correction markers, augmentation and the tile stream."""

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import assert_ta_topology
from scipy import ndimage as ndi

from epyseg_ij import augment, data, io, targets
from epyseg_ij.errors import InputError
from epyseg_ij.postprocess import FOUR, labels_from_outlines, outlines_from_regions
from epyseg_ij.synth import STYLES, synth_epithelium, write_dataset


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.fixture
def ta_folder(tmp_path):
    write_dataset(tmp_path / "ta", 3, (96, 128), seed=5)
    return tmp_path / "ta"


# ---------------------------------------------------------------------------------------------------- discovery


def test_ta_layout(ta_folder):
    pairs = data.find_pairs([ta_folder])
    assert [(p.image.name, p.mask.relative_to(ta_folder).as_posix(), p.layout) for p in pairs] == [
        (f"synth_00{i}.tif", f"synth_00{i}/groundTruth.tif", "ta") for i in range(3)
    ]
    assert all(p.corrected is None for p in pairs)  # no marker: masks of unknown origin


def test_image_mask_pairs_side_by_side_and_in_folders(tmp_path):
    sample = synth_epithelium((64, 64), seed=1)
    side = tmp_path / "side"
    side.mkdir()
    tifffile.imwrite(side / "a.tif", sample.image)
    tifffile.imwrite(side / "a_mask.tif", sample.outlines)
    tifffile.imwrite(side / "b.png.tif", sample.image)
    tifffile.imwrite(side / "b.png_labels.tif", sample.labels)
    pairs = data.find_pairs([side])
    assert [(p.image.name, p.mask.name, p.layout) for p in pairs] == [
        ("a.tif", "a_mask.tif", "pair"),
        ("b.png.tif", "b.png_labels.tif", "pair"),
    ]


def test_images_and_masks_folders(tmp_path):
    sample = synth_epithelium((64, 64), seed=2)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("x", "y"):
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif", sample.image)
        tifffile.imwrite(tmp_path / "masks" / f"{name}.tif", sample.labels)
    pairs = data.find_pairs([tmp_path])
    assert [(p.image.parent.name, p.mask.parent.name, p.image.name) for p in pairs] == [
        ("images", "masks", "x.tif"),
        ("images", "masks", "y.tif"),
    ]


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no images in data folder"):
        data.find_pairs([tmp_path])
    with pytest.raises(InputError, match="not found"):
        data.find_pairs([tmp_path / "missing"])
    with pytest.raises(InputError, match="no data folder"):
        data.find_pairs([])


def test_ta_image_folder_given_instead_of_its_parent(ta_folder):
    with pytest.raises(InputError, match="is a Tissue Analyzer image folder: give the folder above it"):
        data.find_pairs([ta_folder / "synth_000"])


def test_images_without_masks(ta_folder, tmp_path):
    tifffile.imwrite(ta_folder / "lonely.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"1 image\(s\) in .* have no mask \(lonely.tif\)"):
        data.find_pairs([ta_folder])
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "z.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="no mask of the same name"):
        data.find_pairs([tmp_path])


# ---------------------------------------------------------------------------------------------- masks and checks


def test_mask_of_another_size(tmp_path):
    sample = synth_epithelium((64, 64), seed=1)
    tifffile.imwrite(tmp_path / "a.tif", sample.image)
    tifffile.imwrite(tmp_path / "a_mask.tif", sample.outlines[:, :60])
    (pair,) = data.find_pairs([tmp_path])
    with pytest.raises(InputError, match="mask .*a_mask.tif is 60x64 px but its image a.tif is 64x64"):
        data.load_pair(pair)


def test_masks_that_are_neither_binary_nor_labels():
    rng = np.random.default_rng(0)
    photo = ndi.gaussian_filter(rng.normal(100, 30, (64, 64)), 1).astype(np.uint8)  # a grey-level image
    with pytest.raises(InputError, match="neither a binary outline mask nor a label image"):
        data.outlines_from_mask(photo)
    with pytest.raises(InputError, match="fractional"):
        data.outlines_from_mask(rng.random((16, 16)).astype(np.float32))
    with pytest.raises(InputError, match="empty"):
        data.outlines_from_mask(np.zeros((16, 16), np.uint8))
    with pytest.raises(InputError, match="mostly white"):
        data.outlines_from_mask(255 - synth_epithelium((64, 64), seed=1).outlines)
    with pytest.raises(InputError, match="2D"):
        data.outlines_from_mask(np.zeros((2, 16, 16), np.uint8))


def test_label_images_become_outlines():
    sample = synth_epithelium((96, 96), seed=4)
    regions = ndi.grey_dilation(sample.labels, size=3)  # a partition without boundary pixels
    np.testing.assert_array_equal(data.outlines_from_mask(regions.astype(np.int32)), outlines_from_regions(regions))
    # Zero drawn as 1-px lines (a watershed with lines) is read as the boundaries themselves.
    np.testing.assert_array_equal(data.outlines_from_mask(sample.labels), sample.outlines)
    # Zero as a large background region is a region like the others.
    with_background = sample.labels.astype(np.int32) + 1
    with_background[:30, :30] = 0
    out = data.outlines_from_mask(with_background)
    inside = labels_from_outlines(out)[2:27, 2:27]
    assert inside.min() == inside.max() > 0, "the background square is one region"
    assert (out[28:31, 5:25] == 255).any(axis=0).all(), "with a boundary along its edge"


def test_thick_outlines_are_thinned_to_one_pixel():
    sample = synth_epithelium((96, 96), seed=6)
    thick = ndi.binary_dilation(sample.outlines > 0, FOUR).astype(np.uint8)  # 0/1, about 3 px wide
    out = data.outlines_from_mask(thick)
    square = out[:-1, :-1] & out[1:, :-1] & out[:-1, 1:] & out[1:, 1:]
    assert not square.any()
    assert labels_from_outlines(out).max() == labels_from_outlines(thick).max()
    # The thin line runs inside the thick one, near the original.
    assert (thick[out > 0] > 0).all()
    assert ndi.distance_transform_edt(sample.outlines == 0)[out > 0].mean() < 0.5


def test_tissue_analyzer_frame_is_removed():
    outlines = synth_epithelium((80, 80), seed=7).outlines
    framed = outlines.copy()
    framed[[0, -1], :] = framed[:, [0, -1]] = 255
    out = data.outlines_from_mask(framed)
    assert not out[0].all() and not out[:, 0].all()
    # Away from the frame the mask is unchanged; bonds that met the frame run on to the edge.
    np.testing.assert_array_equal(out[2:-2, 2:-2], outlines[2:-2, 2:-2])
    assert_ta_topology(out, labels_from_outlines(out))
    ends = np.nonzero(outlines[1, 1:-1] & ~outlines[1, :-2] & ~outlines[1, 2:])[0] + 1  # bonds crossing row 1
    assert (out[0, ends] == 255).all()
    assert labels_from_outlines(out).max() >= labels_from_outlines(outlines).max() - 2


def test_loading_writes_nothing_into_the_data_folder(ta_folder):
    before = _tree(ta_folder)
    images = [data.load_pair(p) for p in data.find_pairs([ta_folder])]
    assert _tree(ta_folder) == before
    im = images[0]
    assert im.shape == (96, 128) and im.source.image.dtype == np.float32
    assert im.source.image.min() == 0 and im.source.image.max() == 1  # min-max, as segment normalises
    expected = targets.packed_targets(tifffile.imread(ta_folder / "synth_000" / "groundTruth.tif"))
    np.testing.assert_array_equal(im.source.packed, expected)


# ------------------------------------------------------------------------------------------- correction markers


def test_corrected_and_machine_folders_are_told_apart(ta_folder):
    # segment writes masks with a marker; a person then corrects one of them in Tissue Analyzer.
    for i in range(3):
        outlines = tifffile.imread(ta_folder / f"synth_00{i}" / "groundTruth.tif")
        (ta_folder / f"synth_00{i}" / "groundTruth.tif").unlink()
        if i < 2:
            assert io.write_ta_mask(ta_folder / f"synth_00{i}.tif", outlines).written
        else:
            tifffile.imwrite(ta_folder / f"synth_00{i}" / "handCorrection.tif", outlines)  # no marker
    corrected = ta_folder / "synth_001" / "handCorrection.tif"
    mask = tifffile.imread(corrected)
    mask[40, :] = 255  # the person draws a missing bond
    tifffile.imwrite(corrected, mask)

    pairs = data.find_pairs([ta_folder])
    assert [p.corrected for p in pairs] == [False, True, None]
    assert [p.image.name for p in data.find_pairs([ta_folder], corrected_only=True)] == ["synth_001.tif"]


def test_corrected_only_with_nothing_corrected(ta_folder):
    outlines = tifffile.imread(ta_folder / "synth_000" / "groundTruth.tif")
    (ta_folder / "synth_000" / "groundTruth.tif").unlink()
    io.write_ta_mask(ta_folder / "synth_000.tif", outlines)
    with pytest.raises(InputError, match=r"none of the 3 masks was corrected by hand \(1 unchanged"):
        data.find_pairs([ta_folder], corrected_only=True)


# ------------------------------------------------------------------------------------------------------- splits


def test_validation_split_takes_every_kth_image():
    pairs = [data.Pair(Path(f"{i}.tif"), Path(f"{i}_mask.tif"), "pair") for i in range(10)]
    train, val = data.split(pairs, 0.3)
    assert [p.image.stem for p in val] == ["1", "5", "8"]
    assert len(train) == 7 and not set(train) & set(val)
    assert data.split(pairs[:1], 0.5) == (pairs[:1], [])
    assert data.split(pairs[:2], 0.1)[1] == [pairs[1]]
    with pytest.raises(InputError):
        data.split(pairs, 1.0)


# -------------------------------------------------------------------------------------------------- augmentation


@pytest.fixture(scope="module")
def clean_source():
    sample = synth_epithelium((160, 160), seed=8, style=STYLES["clean"])
    image = (sample.image - sample.image.min()) / np.ptp(sample.image)
    return augment.prepare(image.astype(np.float32), sample.outlines, targets.packed_targets(sample.outlines))


def test_plain_crops_are_exact(clean_source):
    rng = np.random.default_rng(0)
    image, packed = augment.random_tile(clean_source, 64, rng, augment.NONE)
    ys, xs = np.nonzero(np.all(np.lib.stride_tricks.sliding_window_view(clean_source.image, (64, 64)) == image, (2, 3)))
    assert len(ys) == 1
    np.testing.assert_array_equal(packed, clean_source.packed[ys[0] : ys[0] + 64, xs[0] : xs[0] + 64])


@pytest.mark.parametrize("geometric", [0.0, 1.0])
def test_augmented_targets_stay_valid_and_aligned(clean_source, geometric):
    rng = np.random.default_rng(1)
    aug = augment.Augmentation(p_geometric=geometric, p_intensity=0, p_noise=0, p_blur=0)
    for _ in range(6):
        image, packed = augment.random_tile(clean_source, 64, rng, aug)
        t = targets.unpack(packed).astype(bool)
        bonds = t[..., 0]
        # Channel 0 is still a 1-px outline mask and the other channels still derive from it. (Crops are exact, see
        # above; a crop can cut a cell off the edge, which leaves lines that separate nothing inside the tile.)
        if geometric:
            outlines = bonds.view(np.uint8) * np.uint8(255)
            assert_ta_topology(outlines, labels_from_outlines(outlines))
        # (Next to the tile's edge the dilated channels also see bonds outside the tile.)
        np.testing.assert_array_equal(t[2:-2, 2:-2, 1], targets.dilate_cross(bonds)[2:-2, 2:-2])
        np.testing.assert_array_equal(t[..., 3], ~t[..., 1])
        np.testing.assert_array_equal(t[..., 6], ~t[..., 5])
        assert not (t[..., 5] & bonds).any()
        # Image and targets moved together: the membranes are where the bonds are.
        assert image[bonds].mean() > 2.5 * image[~t[..., 2]].mean()
        near = ndi.maximum_filter(image, 3)[bonds]
        assert np.mean(near > 0.5 * image[bonds].mean()) > 0.95


def test_intensity_changes_touch_the_image_only(clean_source):
    plain = augment.random_tile(clean_source, 64, np.random.default_rng(2), augment.NONE)
    noisy = augment.Augmentation(dihedral=False, p_geometric=0, p_intensity=1, p_noise=1, p_blur=1)
    changed = augment.random_tile(clean_source, 64, np.random.default_rng(2), noisy)
    np.testing.assert_array_equal(plain[1], changed[1])
    assert np.abs(plain[0] - changed[0]).mean() > 0.01


# ---------------------------------------------------------------------------------------------------- the stream


def test_tile_batches_have_a_fixed_size_and_are_reproducible(ta_folder):
    images = [data.load_pair(p) for p in data.find_pairs([ta_folder])]
    stream = data.tile_batches(images, 64, 3, seed=4)
    batches = [next(stream) for _ in range(4)]
    for x, y in batches:
        assert x.shape == (3, 64, 64, 1) and x.dtype == np.float32
        assert y.shape == (3, 64, 64, 8) and set(np.unique(y)) <= {0.0, 1.0}
    again = next(data.tile_batches(images, 64, 3, seed=4))
    np.testing.assert_array_equal(again[0], batches[0][0])
    assert not np.array_equal(batches[0][0], batches[1][0])


def test_grid_tiles_cover_validation_images(ta_folder):
    images = [data.load_pair(p) for p in data.find_pairs([ta_folder])]
    x, y = data.grid_tiles(images, 64)
    assert x.shape == (3 * 2 * 2, 64, 64, 1) and y.shape == (12, 64, 64, 8)
    np.testing.assert_array_equal(x[0, ..., 0], images[0].source.image[:64, :64])
    assert data.grid_tiles(images, 64, limit=5)[0].shape[0] == 5


def test_tf_dataset_yields_fixed_batches(ta_folder):
    images = [data.load_pair(p) for p in data.find_pairs([ta_folder])]
    ds = data.dataset(images, 32, 2)
    assert ds.element_spec[0].shape.as_list() == [2, 32, 32, 1]
    x, y = next(iter(ds))
    assert x.shape == (2, 32, 32, 1) and y.shape == (2, 32, 32, 8)
    parallel = iter(data.dataset(images, 32, 2, seed=(1, 2), workers=3))
    firsts = [next(parallel)[0].numpy() for _ in range(6)]
    assert all(f.shape == (2, 32, 32, 1) for f in firsts)
    assert len({f.tobytes() for f in firsts}) == 6, "workers draw different tiles"


def test_tile_size_must_suit_the_network():
    assert data.check_tile(96) == 96
    for bad in (48, 16, 100):
        with pytest.raises(InputError, match="multiple of 32"):
            data.check_tile(bad)


def test_no_stray_files_in_cwd(tmp_path, ta_folder):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        data.load_pair(data.find_pairs([ta_folder])[0])
        assert sorted(os.listdir(tmp_path)) == ["ta"]
    finally:
        os.chdir(cwd)
