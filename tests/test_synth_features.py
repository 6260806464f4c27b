"""The realism features of the synthetic generator, each measured on images, and the per-image style draws."""

import sys
from dataclasses import replace

import numpy as np
import pytest
from conftest import REPO, SHARED_DATA
from scipy import ndimage as ndi
from skimage.measure import regionprops

from epyseg_ij.synth import HELDOUT_STYLES, STYLES, VARIED, Style, synth_epithelium

CLEAN = replace(STYLES["clean"], cell_diameter=20.0)


def sample(**features):
    return synth_epithelium((256, 256), seed=11, style=replace(CLEAN, **features))


def junction_signal(s) -> np.ndarray:
    return s.image.astype(float)[s.outlines > 0]


def test_styles_without_the_features_draw_the_same_samples_as_before():
    """Features draw random numbers only when on: adding one to the dataclass changed no existing sample."""
    base = synth_epithelium((128, 128), seed=3, style=STYLES["default"])
    again = synth_epithelium((128, 128), seed=3, style=replace(STYLES["default"], gap_fraction=0.0, dots=0.0))
    assert np.array_equal(base.image, again.image) and np.array_equal(base.labels, again.labels)


def test_elongation_stretches_cells():
    def aspect(s):
        props = [p for p in regionprops(s.labels) if p.area > 30]
        return np.median([p.axis_major_length / max(p.axis_minor_length, 1) for p in props])

    assert aspect(sample(elongation=2.2)) > aspect(sample()) + 0.4


def test_non_tissue_is_one_dark_region_without_junctions():
    s = sample(tissue_fraction=0.6)
    biggest = np.bincount(s.labels.ravel())[1:].max()
    assert biggest > 0.2 * s.labels.size  # one region holds the rest of the field
    region = s.labels == np.argmax(np.bincount(s.labels.ravel())[1:]) + 1
    cells = (s.labels > 0) & ~region
    assert s.image[region].mean() < 0.8 * s.image[cells].mean()


def test_gaps_and_dots_break_the_junction_signal():
    plain, gapped, dotted = (
        junction_signal(sample()),
        junction_signal(sample(gap_fraction=0.3)),
        junction_signal(sample(dots=0.9)),
    )
    dim = np.percentile(plain, 10)
    assert (gapped < dim).mean() > 0.15 > (plain < dim).mean()
    assert np.std(dotted) / np.mean(dotted) > 1.5 * np.std(plain) / np.mean(plain)


def test_vesicles_are_bright_spots_inside_cells():
    def bright_inside(s):
        inside = ndi.distance_transform_edt(s.outlines == 0) > 3
        image = s.image.astype(float)
        return (image[inside] > np.percentile(junction_signal(s), 50)).sum()

    assert bright_inside(sample(vesicles=2.0)) > 5 * (bright_inside(sample()) + 10)


def test_defocus_removes_fine_detail():
    def detail(s):
        image = s.image.astype(float)
        return np.abs(image - ndi.gaussian_filter(image, 2)).mean()

    assert detail(sample(defocus=0.6)) < 0.85 * detail(sample())


def test_varied_draws_one_style_per_seed():
    a, b, a_again = (synth_epithelium((96, 96), seed=s, style=VARIED) for s in ((1, 0), (1, 1), (1, 0)))
    assert np.array_equal(a.image, a_again.image)
    assert not np.array_equal(a.image, b.image)
    styles = [VARIED.draw(np.random.default_rng(i)) for i in range(40)]
    diameters = [s.cell_diameter for s in styles]
    assert min(diameters) < 12 and max(diameters) > 30
    assert sum(s.gap_fraction > 0 for s in styles) >= 8 and sum(s.tissue_fraction < 1 for s in styles) >= 5


def test_the_hard_end_of_varied_has_defects_and_few_photons():
    hard, rngs = STYLES["varied-hard"], [np.random.default_rng(i) for i in range(40)]
    styles = [hard.draw(rng) for rng in rngs]
    assert all(8 <= s.photons <= 300 for s in styles)
    assert sum(s.gap_fraction > 0 and s.dots > 0 and s.vesicles > 0 for s in styles) >= 12  # 0.8³ of 40 ≈ 20
    usual = [VARIED.draw(np.random.default_rng(i)) for i in range(40)]
    assert sum(s.gap_fraction > 0 and s.dots > 0 and s.vesicles > 0 for s in usual) <= 8  # 0.4³ of 40 ≈ 3


def test_heldout_styles_are_not_training_styles():
    assert set(HELDOUT_STYLES) == {"heldout", "embryo"}
    assert all(isinstance(style, Style) for style in HELDOUT_STYLES.values())


@pytest.mark.parametrize(
    "bad", [dict(elongation=0.5), dict(tissue_fraction=0.0), dict(gap_fraction=1.0), dict(dots=2.0)]
)
def test_feature_values_are_validated(bad):
    with pytest.raises(ValueError):
        Style(**bad)


def test_training_styles_cover_the_real_epithelia():
    """bench/synth_realism.py: every statistic of the real epithelia lies inside the range of the training draws."""
    if not (SHARED_DATA / "epitools_wingdisc").exists():
        pytest.skip("shared data not found")
    sys.path.insert(0, str(REPO / "bench"))
    import synth_realism

    report = synth_realism.main(["--n", "48", "--size", "224"])
    for stat, result in report["stats"].items():
        epithelia = [name for name in result["outside"] if not name.startswith("plantseg")]
        assert not epithelia, f"{stat}: {epithelia} outside the synthetic range {result['synthetic_range']}"
