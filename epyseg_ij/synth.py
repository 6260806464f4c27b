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
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from epyseg_ij.errors import InputError
from epyseg_ij.io import TA_MASK, write_tiff
from epyseg_ij.postprocess import labels_from_outlines, outlines_from_regions

log = logging.getLogger(__name__)

_PACKING = 0.8  # disks of radius _PACKING * r must not overlap: cells end up close to their drawn size
_TRIES_PER_CELL = 5  # dart-throwing candidates per expected cell
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


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
        for name in ("giant_fraction", "uneven"):
            if not 0 <= getattr(self, name) < 1:
                raise InputError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not (self.nest_scale > 0 and self.wiggle_scale > 0 and self.photons > 0):
            raise InputError("nest_scale, wiggle_scale and photons must be > 0")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and value < 0:
                raise InputError(f"{field.name} must be >= 0, got {value}")


#: Styles by name, for ``epyseg-ij synth --style NAME``.
STYLES: dict[str, Style] = {
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
    shape: tuple[int, int] = (256, 256), seed: int | Sequence[int] = 0, style: Style = STYLES["default"]
) -> Sample:
    """Draw a synthetic epithelium with its exact ground truth.

    Parameters
    ----------
    shape : (int, int)
        Image height and width (each >= 16).
    seed : int or sequence of int
        Seed of the random generator (``numpy.random.default_rng(seed)``); equal seeds give equal samples.
    style : Style
        Generator parameters, e.g. ``STYLES["heldout"]``.

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
    if not isinstance(style, Style):
        raise InputError(f"style must be a Style, got {type(style).__name__}")
    rng = np.random.default_rng(seed)
    regions = _tissue(shape, style, rng)
    outlines = outlines_from_regions(regions)
    labels = labels_from_outlines(outlines)
    image = _render(outlines != 0, labels, style, rng)
    return Sample(image=image, outlines=outlines, labels=labels)


def write_dataset(
    out_dir: str | os.PathLike,
    n: int,
    shape: tuple[int, int] = (256, 256),
    seed: int = 0,
    style: Style = STYLES["default"],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``n`` synthetic samples in the Tissue Analyzer layout.

    Image ``i`` goes to ``out_dir/synth_{i:03d}.tif`` and its outline mask to
    ``out_dir/synth_{i:03d}/handCorrection.tif`` (8-bit 0/255). Image ``i`` is
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
        write_tiff(out / image_path.stem / TA_MASK, sample.outlines)
        paths.append(image_path)
    log.info("wrote %d synthetic samples of %dx%d to %s", n, shape[0], shape[1], out)
    return paths


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or not all(isinstance(s, int | np.integer) and s >= 16 for s in shape):
        raise InputError(f"shape must be two integers >= 16, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


# --- tissue ---


def _tissue(shape: tuple[int, int], style: Style, rng: np.random.Generator) -> np.ndarray:
    """A partition of ``shape`` into cells (int64 ids, no background)."""
    d = style.cell_diameter
    margin = math.ceil(d * max(style.giant_scale[1], 2.0))
    domain = (shape[0] + 2 * margin, shape[1] + 2 * margin)
    centres, radii = _pack_cells(domain, style, rng)
    wiggle = style.wiggle_scale * d
    amplitude = style.irregularity * d
    yy, xx = np.meshgrid(np.arange(shape[0], dtype=float), np.arange(shape[1], dtype=float), indexing="ij")
    yy += margin + amplitude * _smooth_field(rng, shape, wiggle)
    xx += margin + amplitude * _smooth_field(rng, shape, wiggle)
    # Power diagram (distance^2 - r^2) as a Euclidean nearest neighbour in 3D: each seed is lifted to the height
    # sqrt(R^2 - r^2), R the largest radius.
    lift = np.sqrt(radii.max() ** 2 - radii**2)
    tree = cKDTree(np.column_stack([centres, lift]))
    queries = np.column_stack([yy.ravel(), xx.ravel(), np.zeros(yy.size)])
    return tree.query(queries, workers=-1)[1].reshape(shape).astype(np.int64)


def _pack_cells(domain: tuple[int, int], style: Style, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (n, 2) and radii (n,) by dart throwing: giants first, then ordinary cells."""
    d = style.cell_diameter
    area = domain[0] * domain[1]
    n_expected = area / (math.pi * (d / 2) ** 2)
    n_giants = rng.poisson(style.giant_fraction * n_expected)
    n_tries = int(_TRIES_PER_CELL * n_expected * math.exp(2 * style.nest_strength))
    points = rng.uniform((0, 0), domain, size=(n_giants + n_tries, 2))
    nest = _smooth_field(rng, domain, style.nest_scale * d, at=points)
    radii = d / 2 * np.exp(style.nest_strength * nest + style.diameter_spread * rng.standard_normal(len(points)))
    radii[:n_giants] *= rng.uniform(*style.giant_scale, size=n_giants)
    pad = math.ceil(_PACKING * radii.max()) + 1
    claimed = np.zeros((domain[0] + 2 * pad, domain[1] + 2 * pad), bool)
    keep = np.zeros(len(points), bool)
    for i, ((y, x), r) in enumerate(zip(points.astype(int) + pad, radii, strict=True)):
        k = round(_PACKING * r)
        window = claimed[y - k : y + k + 1, x - k : x + k + 1]
        disk = _disk(k)
        if not window[disk].any():
            window[disk] = True
            keep[i] = True
    return points[keep], radii[keep]


@lru_cache(maxsize=256)
def _disk(radius: int) -> np.ndarray:
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return yy**2 + xx**2 <= radius**2


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, int], scale: float, at: np.ndarray | None = None
) -> np.ndarray:
    """A smooth random field with unit standard deviation and correlation length ~``scale`` px.

    White noise on a grid of step ``scale / 2``, smoothed, then cubic-spline interpolated on ``shape`` (or at
    the points ``at``, shape (n, 2)).
    """
    step = max(scale / 2, 1.0)
    coarse = rng.standard_normal((math.ceil(shape[0] / step) + 4, math.ceil(shape[1] / step) + 4))
    coarse = ndi.gaussian_filter(coarse, 1.0)
    coarse = (coarse - coarse.mean()) / (coarse.std() + 1e-12)
    if at is not None:
        return ndi.map_coordinates(coarse, (at / step + 2).T, order=3, mode="mirror")
    fine = ndi.zoom(coarse, step, order=3, mode="mirror", grid_mode=True)
    offset = round(2 * step)
    fine = fine[offset : offset + shape[0], offset : offset + shape[1]]
    return fine / (fine.std() + 1e-12)


# --- image ---


def _render(boundary: np.ndarray, labels: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """The microscope image of a tissue given its 1-px boundaries and cell labels."""
    membrane = _membrane(boundary, labels, style, rng)
    membrane += _puncta(boundary, style, rng)
    cells = labels.max()
    cytoplasm = style.cytoplasm * rng.lognormal(-(style.cytoplasm_cv**2) / 2, style.cytoplasm_cv, cells + 1)
    cytoplasm[0] = style.cytoplasm
    signal = style.background + cytoplasm[labels] + membrane
    if style.uneven > 0:
        ramp = np.add.outer(*(np.linspace(-0.5, 0.5, s) * rng.normal(0, 1) for s in boundary.shape))
        field = 0.5 * _smooth_field(rng, boundary.shape, max(boundary.shape) / 1.5) + ramp
        signal *= 1 + style.uneven * field / np.abs(field).max()
    if style.blur_sigma > 0:
        signal = ndi.gaussian_filter(signal, style.blur_sigma)
    counts = rng.poisson(signal * style.photons) + rng.normal(0, style.read_noise, signal.shape)
    top = np.iinfo(style.dtype).max
    peak = style.photons * (1 + style.background + style.cytoplasm) * (1 + style.uneven)
    scaled = 0.02 * top + counts * (0.6 * top / peak)
    return np.clip(np.rint(scaled), 0, top).astype(style.dtype)


def _membrane(boundary: np.ndarray, labels: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Junction signal: each pixel takes the profile of its nearest boundary pixel's junction."""
    junction = _junction_ids(boundary, labels)
    n = int(junction.max()) + 1
    brightness = rng.lognormal(-(style.junction_cv**2) / 2, style.junction_cv, n)
    sigma = rng.uniform(*style.junction_width, n) / _FWHM_PER_SIGMA
    distance, (iy, ix) = ndi.distance_transform_edt(~boundary, return_indices=True)
    nearest = junction[iy, ix]
    profile = brightness[nearest] * np.exp(-0.5 * (distance / sigma[nearest]) ** 2)
    if style.along_cv > 0:
        profile *= np.clip(1 + style.along_cv * _smooth_field(rng, boundary.shape, 0.5 * style.cell_diameter), 0, None)
    return profile


def _junction_ids(boundary: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Number the junctions: a boundary pixel belongs to the pair (lowest, highest) of cells around it (3x3)."""
    big = np.iinfo(np.int64).max
    cells = labels.astype(np.int64)
    high = ndi.maximum_filter(cells, size=3)
    low = ndi.minimum_filter(np.where(cells > 0, cells, big), size=3)
    low = np.where(low == big, high, low)
    key = low[boundary] * (int(cells.max()) + 1) + high[boundary]
    ids = np.zeros(boundary.shape, np.int64)
    ids[boundary] = np.unique(key, return_inverse=True)[1]
    return ids


def _puncta(boundary: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Bright spots (Gaussian, sigma 1 px, exponential amplitudes) centred on random boundary pixels."""
    spots = np.zeros(boundary.shape)
    if style.puncta_density <= 0:
        return spots
    ys, xs = np.nonzero(boundary)
    pick = rng.random(len(ys)) < style.puncta_density
    spots[ys[pick], xs[pick]] = rng.exponential(style.puncta_brightness, int(pick.sum())) * 2 * math.pi
    return ndi.gaussian_filter(spots, 1.0)
