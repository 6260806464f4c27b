"""Synthetic 2D epithelia (bright junctions on a dark background) with exact Tissue Analyzer ground truth.

A sample is built in three steps:

1. **Tissue**: cell centres are packed by dart throwing with a diameter per cell (log-normal spread, a smooth
   field that makes nests of small cells and patches of larger ones, and a few giant cells placed first). The
   cells are the power diagram of these disks, sampled through a smooth random displacement field so that
   junctions are curved. The seeds cover a margin around the image: the tissue fills it, border cells are cut.
2. **Ground truth**: the partition becomes a 1-px outline mask with
   :func:`~epyseg_ij.postprocess.outlines_from_regions`, and labels with
   :func:`~epyseg_ij.postprocess.labels_from_outlines`.
3. **Image**: every pixel takes the profile of its nearest outline pixel (peak on the 1-px line, brightness and
   width drawn per junction, smooth variation along it), plus puncta on junctions, per-cell cytoplasm, a haze,
   uneven illumination, optical blur, Poisson photon noise and Gaussian read noise, scaled to uint8 or uint16.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``: same seed, same sample.
"""

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from epyseg_ij import _synth
from epyseg_ij.errors import InputError
from epyseg_ij.io import GROUND_TRUTH, write_tiff
from epyseg_ij.postprocess import labels_from_outlines, outlines_from_regions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Style:
    """Parameters of the synthetic epithelium generator.

    Lengths are in pixels unless stated; intensities are relative to a mean junction peak of 1 before noise.

    Attributes
    ----------
    cell_diameter : float
        Median cell diameter.
    diameter_spread : float
        Log-normal sigma of cell diameters around the local median.
    nest_strength : float
        Amplitude (log scale) of a smooth field that makes nests of small cells and patches of larger ones.
    nest_scale : float
        Correlation length of that field, in cell diameters.
    giant_fraction : float
        Expected fraction of giant cells.
    giant_scale : (float, float)
        Range of giant diameter / local median diameter.
    irregularity : float
        Standard deviation of the smooth displacement that curves junctions, in cell diameters.
    wiggle_scale : float
        Correlation length of that displacement, in cell diameters.
    junction_width : (float, float)
        Range of junction profile widths (full width at half maximum), drawn per junction.
    junction_cv : float
        Coefficient of variation of junction brightness, drawn per junction.
    along_cv : float
        Smooth brightness variation along junctions (relative).
    puncta_density : float
        Expected puncta per outline pixel.
    puncta_brightness : float
        Mean punctum amplitude (exponentially distributed).
    cytoplasm : float
        Mean level inside cells.
    cytoplasm_cv : float
        Coefficient of variation of the cytoplasm level, drawn per cell.
    background : float
        Haze added everywhere.
    uneven : float
        Illumination unevenness in [0, 1): a smooth field plus a ramp scales the signal between
        ``1 - uneven`` and ``1 + uneven``.
    blur_sigma : float
        Gaussian optical blur.
    photons : float
        Expected photons at a mean junction peak (sets the Poisson noise).
    read_noise : float
        Standard deviation of the Gaussian read noise, in photons.
    elongation : float
        Aspect ratio of the cells (>= 1), along one random direction per image.
    tissue_fraction : float
        Share of the field covered by tissue, in (0, 1]; the rest is one non-tissue region without junctions.
    gap_fraction : float
        Share of junction length where the signal drops out (gaps), in [0, 1).
    dots : float
        How far junction signal is broken into dots (E-cadherin clusters), in [0, 1].
    vesicles : float
        Expected bright vesicles per cell, inside cells.
    defocus : float
        Share of the field out of focus (smooth patches blurred further), in [0, 1).
    dtype : {"uint8", "uint16"}
        Output image type. A camera offset of 2 % of its range is added, and a mean junction peak under the
        brightest illumination lands at 60 % of it: only puncta and the brightest junctions saturate.

    Examples
    --------
    >>> Style(cell_diameter=30.0, dtype="uint16").cell_diameter
    30.0
    """

    cell_diameter: float = 16.0
    diameter_spread: float = 0.22
    nest_strength: float = 0.3
    nest_scale: float = 5.0
    giant_fraction: float = 0.01
    giant_scale: tuple[float, float] = (2.4, 3.6)
    irregularity: float = 0.1
    wiggle_scale: float = 0.7
    junction_width: tuple[float, float] = (1.2, 3.0)
    junction_cv: float = 0.3
    along_cv: float = 0.15
    puncta_density: float = 0.04
    puncta_brightness: float = 0.7
    cytoplasm: float = 0.12
    cytoplasm_cv: float = 0.3
    background: float = 0.05
    uneven: float = 0.35
    blur_sigma: float = 0.8
    photons: float = 60.0
    read_noise: float = 2.0
    elongation: float = 1.0
    tissue_fraction: float = 1.0
    gap_fraction: float = 0.0
    dots: float = 0.0
    vesicles: float = 0.0
    defocus: float = 0.0
    dtype: str = "uint8"

    def __post_init__(self) -> None:
        if not self.cell_diameter >= 4:
            raise InputError(f"cell_diameter must be >= 4 px, got {self.cell_diameter}")
        if self.dtype not in ("uint8", "uint16"):
            raise InputError(f"dtype must be 'uint8' or 'uint16', got {self.dtype!r}")
        for name in ("giant_scale", "junction_width"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise InputError(f"{name} must be a range 0 < low <= high, got {(low, high)}")
        if not (self.elongation >= 1 and 0 < self.tissue_fraction <= 1 and 0 <= self.dots <= 1):
            raise InputError("elongation must be >= 1, tissue_fraction in (0, 1] and dots in [0, 1]")
        for name in ("giant_fraction", "uneven", "gap_fraction", "defocus"):
            if not 0 <= getattr(self, name) < 1:
                raise InputError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not (self.nest_scale > 0 and self.wiggle_scale > 0 and self.photons > 0):
            raise InputError("nest_scale, wiggle_scale and photons must be > 0")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and value < 0:
                raise InputError(f"{field.name} must be >= 0, got {value}")


#: Styles by name, for ``epyseg-ij synth --style NAME``.
STYLES: dict[str, "Style | Varied"] = {
    # The training style.
    "default": Style(),
    # Held-out evaluation: larger cells with wider, more uneven junctions, a brighter cytoplasm (lower contrast),
    # more blur, fewer photons, stronger uneven illumination and 16-bit output.
    "heldout": Style(
        cell_diameter=26.0,
        diameter_spread=0.15,
        nest_strength=0.15,
        giant_fraction=0.005,
        irregularity=0.12,
        wiggle_scale=0.5,
        junction_width=(2.5, 5.0),
        junction_cv=0.4,
        along_cv=0.3,
        puncta_density=0.1,
        puncta_brightness=1.0,
        cytoplasm=0.3,
        cytoplasm_cv=0.15,
        background=0.15,
        uneven=0.45,
        blur_sigma=1.4,
        photons=20.0,
        read_noise=3.0,
        dtype="uint16",
    ),
    # Training variants of the default model (scripts/train_default_model.sh); none is close to "heldout".
    # Thick, blurred junctions around mid-sized cells, as in projected confocal stacks.
    "thick": Style(
        cell_diameter=21.0, junction_width=(3.0, 6.0), blur_sigma=1.8, photons=40.0, cytoplasm=0.2, uneven=0.25
    ),
    # Small, dense cells imaged with few photons.
    "small": Style(cell_diameter=11.0, junction_width=(1.0, 2.2), blur_sigma=0.9, photons=15.0, read_noise=3.0),
    # Large, irregular cells, bright and clean, 16-bit.
    "large": Style(
        cell_diameter=36.0,
        diameter_spread=0.3,
        irregularity=0.15,
        junction_width=(1.5, 4.0),
        photons=300.0,
        uneven=0.15,
        puncta_density=0.08,
        dtype="uint16",
    ),
    # Nearly noise-free and evenly lit: for demos and sanity checks.
    "clean": Style(puncta_density=0.0, uneven=0.0, blur_sigma=0.6, photons=2000.0, read_noise=0.5, cytoplasm_cv=0.1),
}
HELDOUT = STYLES["heldout"]
# Held-out embryo-like junctions: dotted, gapped E-cadherin with vesicles, a bright cytoplasm and few photons: its
# junction signal-to-noise ratio (4.2, bench/synth_realism.py) is below that of the noisiest real image measured
# (5.6, the Ishihara junctions).
STYLES["embryo"] = Style(
    cell_diameter=19.0,
    diameter_spread=0.2,
    irregularity=0.13,
    junction_width=(1.6, 3.2),
    junction_cv=0.45,
    along_cv=0.35,
    puncta_density=0.1,
    cytoplasm=0.28,
    background=0.12,
    uneven=0.5,
    blur_sigma=1.1,
    photons=35.0,
    read_noise=3.0,
    gap_fraction=0.2,
    dots=0.7,
    vesicles=1.2,
    dtype="uint16",
)
#: Styles kept out of training, to judge how a model generalises (bench/real_quality.py).
HELDOUT_STYLES = {"heldout": HELDOUT, "embryo": STYLES["embryo"]}


@dataclass(frozen=True)
class Varied:
    """Draws a new style for every image, over the ranges seen in real epithelia (the default model's training data).

    The ranges were set from measured real images (``bench/synth_realism.py``): cell diameters of 7-50 px, junctions of
    1-11 px, 8 to 50,000 photons at a junction peak, contrast gradients down to 15 % of the brightest
    region, and, each in a share of images, elongated cells, giants beside small-cell nests, gaps, dotted
    junctions, vesicles, out-of-focus patches and non-tissue background. The fixed held-out styles
    (``HELDOUT_STYLES``) lie inside these ranges, but none of their images is ever drawn in training.

    Attributes
    ----------
    defects : float
        Chance that an image has gaps, that it has dotted junctions, that it has vesicles (each drawn apart).
    photons : (float, float)
        Range of photons at a junction peak (drawn log-uniformly).
    """

    defects: float = 0.4
    photons: tuple[float, float] = (8.0, 50000.0)

    def draw(self, rng: np.random.Generator) -> Style:
        u, maybe = rng.uniform, lambda p, low, high, off=0.0: rng.uniform(low, high) if rng.random() < p else off
        calm = 0.15 if rng.random() < 0.25 else 1.0  # evenly lit, even junctions: as in many projections
        d = float(np.exp(u(np.log(7), np.log(50))))
        width = min(u(1.0, 5.0), d / 4)
        return Style(
            cell_diameter=d,
            diameter_spread=u(0.03, 0.3),
            nest_strength=maybe(0.6, 0.05, 0.45),
            giant_fraction=maybe(0.4, 0.005, 0.03),
            irregularity=u(0.05, 0.18),
            wiggle_scale=u(0.4, 0.9),
            junction_width=(width, width * u(1.3, 2.2)),
            junction_cv=calm * u(0.05, 0.5),
            along_cv=calm * u(0.02, 0.4),
            puncta_density=calm * maybe(0.7, 0.01, 0.12),
            puncta_brightness=u(0.3, 1.2),
            cytoplasm=u(0.03, 0.45),
            cytoplasm_cv=calm * u(0.03, 0.4),
            background=u(0.02, 0.3),
            uneven=calm * maybe(0.7, 0.05, 0.85),
            blur_sigma=u(0.5, 4.0),
            photons=float(np.exp(u(*np.log(self.photons)))),
            read_noise=u(0.5, 4.0),
            elongation=maybe(0.35, 1.2, 2.2, 1.0),
            tissue_fraction=maybe(0.3, 0.5, 0.9, 1.0),
            gap_fraction=maybe(self.defects, 0.05, 0.3),
            dots=maybe(self.defects, 0.2, 0.9),
            vesicles=maybe(self.defects, 0.2, 2.5),
            defocus=maybe(0.35, 0.1, 0.4),
            dtype="uint16" if rng.random() < 0.5 else "uint8",
        )


VARIED = Varied()
STYLES["varied"] = VARIED
#: The hard end of ``VARIED``: gaps, dots and vesicles in most images, 8 to 300 photons (stage C of the default model).
STYLES["varied-hard"] = Varied(defects=0.8, photons=(8.0, 300.0))
#: Its far end: gaps, dots and vesicles each in every image, 8 to 100 photons (stage D of the default model).
STYLES["varied-harder"] = Varied(defects=1.0, photons=(8.0, 100.0))


@dataclass(frozen=True)
class Sample:
    """A synthetic image with its exact ground truth.

    Attributes
    ----------
    image : (H, W) uint8 or uint16
        The microscope-like image.
    outlines : (H, W) uint8
        Tissue Analyzer mask: 255 on 1-px boundaries, 0 in cells.
    labels : (H, W) uint16 or uint32
        ``labels_from_outlines(outlines)``: cells 1..n, 0 on boundaries.
    """

    image: np.ndarray
    outlines: np.ndarray
    labels: np.ndarray


def synth_epithelium(
    shape: tuple[int, int] = (256, 256), seed: int | Sequence[int] = 0, style: Style | Varied = STYLES["default"]
) -> Sample:
    """Draw a synthetic epithelium with its exact ground truth.

    Parameters
    ----------
    shape : (int, int)
        Image height and width (each >= 16).
    seed : int or sequence of int
        Seed of the random generator (``numpy.random.default_rng(seed)``); equal seeds give equal samples.
    style : Style or Varied
        Generator parameters, e.g. ``STYLES["heldout"]``, or ``VARIED`` for a style drawn from ``seed`` too.

    Returns
    -------
    Sample
        ``image`` in ``style.dtype``, ``outlines`` (uint8 0/255) and ``labels``.

    Examples
    --------
    >>> sample = synth_epithelium((64, 64), seed=1)
    >>> sample.image.dtype, sorted(np.unique(sample.outlines).tolist())
    (dtype('uint8'), [0, 255])
    """
    shape = _check_shape(shape)
    if not isinstance(style, Style | Varied):
        raise InputError(f"style must be a Style, got {type(style).__name__}")
    rng = np.random.default_rng(seed)
    if isinstance(style, Varied):
        style = style.draw(rng)
    regions = _synth.tissue(shape, style, rng)
    if style.tissue_fraction < 1:
        regions = _synth.non_tissue(regions, style.tissue_fraction, rng)
    outlines = outlines_from_regions(regions)
    labels = labels_from_outlines(outlines)
    outside = (regions == -1) & (outlines == 0) if style.tissue_fraction < 1 else None
    image = _synth.render(outlines != 0, labels, style, rng, outside)
    return Sample(image=image, outlines=outlines, labels=labels)


def write_dataset(
    out_dir: str | os.PathLike,
    n: int,
    shape: tuple[int, int] = (256, 256),
    seed: int = 0,
    style: Style | Varied = STYLES["default"],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``n`` synthetic samples in the Tissue Analyzer layout.

    Image ``i`` goes to ``out_dir/synth_{i:03d}.tif`` and its outline mask to
    ``out_dir/synth_{i:03d}/groundTruth.tif`` (8-bit 0/255; not ``handCorrection.tif``, which ``segment`` would keep
    as a correction), where training finds it. Image ``i`` is
    ``synth_epithelium(shape, (seed, i), style)``, so images are distinct and each can be regenerated alone.
    Files are written atomically.

    Parameters
    ----------
    out_dir : path
        Output folder, created if missing.
    n : int
        Number of samples (>= 1).
    shape : (int, int)
        Image height and width.
    seed : int
        Dataset seed (>= 0).
    style : Style
        Generator parameters.
    overwrite : bool
        Allow writing into a folder that already holds ``synth_000.tif``.

    Returns
    -------
    list of Path
        The image paths, in order.

    Raises
    ------
    InputError
        Bad arguments, or ``out_dir`` already holds a dataset and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_dataset(tempfile.mkdtemp(), n=2, shape=(32, 32), seed=3)
    >>> [p.name for p in paths]
    ['synth_000.tif', 'synth_001.tif']
    """
    out = Path(out_dir)
    shape = _check_shape(shape)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    if (out / "synth_000.tif").exists() and not overwrite:
        raise InputError(f"{out} already holds a synthetic dataset (synth_000.tif); choose another folder or overwrite")
    paths = []
    for i in range(n):
        sample = synth_epithelium(shape, (int(seed), i), style)
        image_path = out / f"synth_{i:03d}.tif"
        write_tiff(image_path, sample.image)
        write_tiff(out / image_path.stem / GROUND_TRUTH, sample.outlines)
        paths.append(image_path)
    log.info("wrote %d synthetic samples of %dx%d to %s", n, shape[0], shape[1], out)
    return paths


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or not all(isinstance(s, int | np.integer) and s >= 16 for s in shape):
        raise InputError(f"shape must be two integers >= 16, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])
