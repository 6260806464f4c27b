"""Partial annotations: an ignore mask beside a mask gets no loss, from discovery to the loss itself."""

import numpy as np
import pytest
import tifffile

from epyseg_ij import augment, data, io, losses, targets
from epyseg_ij._tf import sm, tf
from epyseg_ij.errors import InputError
from epyseg_ij.synth import synth_epithelium


def test_weighted_loss_equals_segmentation_models_when_nothing_is_ignored():
    rng = np.random.default_rng(0)
    truth = (rng.random((2, 32, 32, 7)) > 0.6).astype(np.float32)
    pred = rng.uniform(0.01, 0.99, (2, 32, 32, 7)).astype(np.float32)
    y_true = np.concatenate([truth, np.ones((2, 32, 32, 1), np.float32)], axis=-1)
    ours = float(losses.bce_jaccard_loss(tf().constant(y_true), tf().constant(pred)))
    theirs = float(sm().losses.bce_jaccard_loss(tf().constant(truth), tf().constant(pred)))
    assert ours == pytest.approx(theirs, rel=1e-5)
    ours_iou = float(losses.iou_score(tf().constant(y_true), tf().constant(pred)))
    assert ours_iou == pytest.approx(float(sm().metrics.iou_score(tf().constant(truth), tf().constant(pred))), rel=1e-5)


def test_ignored_pixels_do_not_change_the_loss():
    rng = np.random.default_rng(1)
    truth = (rng.random((1, 32, 32, 7)) > 0.6).astype(np.float32)
    weight = np.ones((1, 32, 32, 1), np.float32)
    weight[:, :, 16:] = 0
    pred = rng.uniform(0.01, 0.99, (1, 32, 32, 7)).astype(np.float32)
    other = pred.copy()
    other[:, :, 16:] = np.where(truth[:, :, 16:] > 0, 0.01, 0.99)  # wrong everywhere in the ignored half
    y_true = tf().constant(np.concatenate([truth, weight], axis=-1))
    a = float(losses.bce_jaccard_loss(y_true, tf().constant(pred)))
    b = float(losses.bce_jaccard_loss(y_true, tf().constant(other)))
    assert a == pytest.approx(b, rel=1e-6)
    unweighted = tf().constant(np.concatenate([truth, np.ones_like(weight)], axis=-1))
    assert float(losses.bce_jaccard_loss(unweighted, tf().constant(other))) > a + 0.1


def write_pair(folder, name, ignore=None, layout="ta"):
    sample = synth_epithelium((96, 96), seed=5)
    io.write_tiff(folder / f"{name}.tif", sample.image)
    if layout == "ta":
        io.write_tiff(folder / name / "handCorrection.tif", sample.outlines)
        if ignore is not None:
            tifffile.imwrite(folder / name / "ignore.tif", ignore)
    else:
        io.write_tiff(folder / f"{name}_mask.tif", sample.outlines)
        if ignore is not None:
            tifffile.imwrite(folder / f"{name}_ignore.tif", ignore)
    return sample


@pytest.mark.parametrize("layout", ["ta", "pair"])
def test_ignore_masks_are_found_and_marked_in_the_targets(tmp_path, layout):
    ignore = np.zeros((96, 96), np.uint8)
    ignore[:, 60:] = 255
    write_pair(tmp_path, "a", ignore, layout)
    write_pair(tmp_path, "b", None, layout)
    pairs = data.find_pairs([tmp_path])
    assert [p.image.name for p in pairs] == ["a.tif", "b.tif"]  # a_ignore.tif is not an image to train on
    assert pairs[0].ignore is not None and pairs[1].ignore is None
    image = data.load_pair(pairs[0], cache=False)
    weights = targets.with_weights(image.source.packed)[..., -1]
    assert np.array_equal(weights == 0, ignore != 0)
    assert np.array_equal(
        targets.unpack(image.source.packed), targets.unpack(data.load_pair(pairs[1], cache=False).source.packed)
    )


def test_warped_tiles_keep_the_ignored_region_with_the_image():
    sample = synth_epithelium((128, 128), seed=2)
    packed = targets.packed_targets(sample.outlines)
    packed[:64] |= targets.IGNORE_BIT
    image = np.zeros((128, 128), np.float32)
    image[:64] = 1.0  # the ignored half is bright: ignore follows the image through every warp
    source = augment.prepare(image, sample.outlines, packed)
    rng = np.random.default_rng(0)
    warp = augment.Augmentation(p_geometric=1.0, p_intensity=0, p_noise=0, p_blur=0)
    for _ in range(5):
        tile, tile_packed = augment.random_tile(source, 64, rng, warp)
        ignored = (tile_packed & targets.IGNORE_BIT) != 0
        assert np.mean(ignored == (tile > 0.5)) > 0.97


def test_an_ignore_mask_of_the_wrong_size_or_covering_everything_is_refused(tmp_path):
    write_pair(tmp_path, "a", np.zeros((50, 50), np.uint8))
    with pytest.raises(InputError, match="ignore mask"):
        data.load_pair(data.find_pairs([tmp_path])[0], cache=False)
    tifffile.imwrite(tmp_path / "a" / "ignore.tif", np.full((96, 96), 255, np.uint8))
    with pytest.raises(InputError, match="ignores the whole image"):
        data.load_pair(data.find_pairs([tmp_path])[0], cache=False)
