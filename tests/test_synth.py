"""Synthetic epithelia: exact TA topology, determinism, realism checks, held-out style, dataset files."""

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from epyseg_ij.errors import InputError
from epyseg_ij.postprocess import labels_from_outlines
from epyseg_ij.synth import HELDOUT, STYLES, Sample, Style, synth_epithelium, write_dataset

FIXED = sorted(name for name, style in STYLES.items() if isinstance(style, Style))  # not drawn per image


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    return {name: synth_epithelium((256, 256), seed=7, style=style) for name, style in STYLES.items() if name in FIXED}


def areas(labels: np.ndarray) -> np.ndarray:
    counts = np.bincount(labels.ravel())[1:]
    return counts[counts > 0]


@pytest.mark.parametrize("name", FIXED)
def test_ground_truth_follows_the_ta_convention(samples, name):
    sample = samples[name]
    assert sample.outlines.dtype == np.uint8
    assert set(np.unique(sample.outlines).tolist()) == {0, 255}
    assert np.array_equal(sample.labels, labels_from_outlines(sample.outlines))
    # 1-px boundaries: every boundary pixel separates cells (no boundary pixel whose non-boundary 4-neighbours all
    # belong to one cell).
    padded = np.pad(sample.labels.astype(np.int64), 1)
    ys, xs = np.nonzero(sample.outlines)
    around = np.stack([padded[ys + 1 + dy, xs + 1 + dx] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))])
    highest = around.max(axis=0)
    lowest = np.where(around > 0, around, np.iinfo(np.int64).max).min(axis=0)
    assert not np.any((highest > 0) & (highest == lowest))


def test_tissue_fills_the_image_without_a_frame(samples):
    sample = samples["default"]
    edges = np.concatenate([sample.outlines[0], sample.outlines[-1], sample.outlines[:, 0], sample.outlines[:, -1]])
    assert np.count_nonzero(edges) < 0.3 * edges.size  # border cells are cut, not framed
    assert np.count_nonzero(sample.outlines) < 0.25 * sample.outlines.size
    assert areas(sample.labels).max() < 0.2 * sample.labels.size  # no empty background region


def test_same_seed_same_sample_other_seed_other_sample():
    first, again = synth_epithelium((96, 128), seed=3), synth_epithelium((96, 128), seed=3)
    other = synth_epithelium((96, 128), seed=4)
    assert first.image.shape == first.outlines.shape == (96, 128)
    for name in ("image", "outlines", "labels"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.outlines, other.outlines)


def test_default_style_mixes_giant_and_small_cells(samples):
    cell_areas = areas(samples["default"].labels)
    assert cell_areas.max() / np.median(cell_areas) > 5
    assert np.percentile(cell_areas, 10) < 0.6 * np.median(cell_areas)


@pytest.mark.parametrize("name", FIXED)
def test_membrane_is_brightest_on_the_ground_truth_lines(samples, name):
    sample = samples[name]
    image = sample.image.astype(float)
    distance = ndi.distance_transform_edt(sample.outlines == 0)
    on_line, beside, far = image[distance == 0].mean(), image[distance == 1].mean(), image[distance > 3].mean()
    assert on_line > beside > far
    assert on_line > 1.5 * far


def test_image_dtype_and_range_follow_the_style(samples):
    assert samples["default"].image.dtype == np.uint8
    assert samples["heldout"].image.dtype == np.uint16
    for name, sample in samples.items():
        top, style = np.iinfo(sample.image.dtype).max, STYLES[name]
        assert np.mean(sample.image == top) < (0.02 if style.dots else 0.01)  # hardly any saturation but dots
        if style.photons >= 20:  # starved-photon styles clip their read noise at 0, as cameras do
            assert np.mean(sample.image == 0) < 0.01


def test_heldout_style_differs_measurably(samples):
    default, heldout = samples["default"], samples["heldout"]
    assert HELDOUT is STYLES["heldout"]
    assert np.median(areas(heldout.labels)) > 2 * np.median(areas(default.labels))

    def contrast_and_noise(sample: Sample) -> tuple[float, float]:
        image = sample.image.astype(float)
        distance = ndi.distance_transform_edt(sample.outlines == 0)
        interior = image[distance > 4]
        return image[distance == 0].mean() / interior.mean(), float(np.std(image - ndi.median_filter(image, 3)))

    default_contrast, default_noise = contrast_and_noise(default)
    heldout_contrast, heldout_noise = contrast_and_noise(heldout)
    assert heldout_contrast < 0.8 * default_contrast
    top8, top16 = np.iinfo(np.uint8).max, np.iinfo(np.uint16).max
    assert heldout_noise / top16 > 1.5 * default_noise / top8


def test_styles_validate_their_parameters():
    with pytest.raises(InputError, match="dtype"):
        Style(dtype="float32")
    with pytest.raises(InputError, match="junction_width"):
        Style(junction_width=(3.0, 1.0))
    with pytest.raises(InputError, match="blur_sigma"):
        Style(blur_sigma=-1.0)
    with pytest.raises(InputError, match="shape"):
        synth_epithelium((8, 256))


def test_write_dataset_writes_ta_layout_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "synth"
    paths = write_dataset(out, n=2, shape=(64, 80), seed=5)
    assert paths == [out / "synth_000.tif", out / "synth_001.tif"]
    images = []
    for i, path in enumerate(paths):
        mask_path = out / path.stem / "groundTruth.tif"
        expected = synth_epithelium((64, 80), seed=(5, i))
        with tifffile.TiffFile(path) as tif:
            assert tif.is_imagej
            images.append(tif.asarray())
        with tifffile.TiffFile(mask_path) as tif:
            assert tif.is_imagej
            mask = tif.asarray()
        assert images[-1].dtype == np.uint8 and mask.dtype == np.uint8
        assert np.array_equal(images[-1], expected.image)
        assert np.array_equal(mask, expected.outlines)
    assert not np.array_equal(images[0], images[1])
    assert sorted(p.name for p in out.rglob("*")) == sorted(
        ["synth_000.tif", "synth_001.tif", "synth_000", "synth_001", "groundTruth.tif", "groundTruth.tif"]
    )  # no temporary files left behind

    before = tifffile.imread(paths[0])
    with pytest.raises(InputError, match="already holds"):
        write_dataset(out, n=1, shape=(64, 80), seed=6)
    assert np.array_equal(tifffile.imread(paths[0]), before)
    write_dataset(out, n=1, shape=(64, 80), seed=6, overwrite=True)
    assert not np.array_equal(tifffile.imread(paths[0]), before)


def test_write_dataset_heldout_is_16_bit(tmp_path):
    [path] = write_dataset(tmp_path, n=1, shape=(48, 48), seed=0, style=HELDOUT)
    assert tifffile.imread(path).dtype == np.uint16
    assert tifffile.imread(tmp_path / "synth_000" / "groundTruth.tif").dtype == np.uint8


def test_write_dataset_validates_arguments(tmp_path):
    with pytest.raises(InputError, match="n must"):
        write_dataset(tmp_path, n=0, shape=(64, 64), seed=0)
    with pytest.raises(InputError, match="seed must"):
        write_dataset(tmp_path, n=1, shape=(64, 64), seed=-1)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="not a folder"):
        write_dataset(blocker, n=1, shape=(64, 64), seed=0)
