"""The insides of ``synth``: the tissue (a partition of the plane into cells) and its microscope image.

Every random draw of an optional feature (elongation, non-tissue background, gaps, dots, vesicles, defocus) happens
only when the feature is on, so styles without it draw exactly the same samples as before it existed.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from scipy.special import ndtri

if TYPE_CHECKING:
    from .synth import Style

_PACKING = 0.8  # disks of radius _PACKING * r must not overlap: cells end up close to their drawn size
_TRIES_PER_CELL = 5  # dart-throwing candidates per expected cell
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_GAP_LEVEL = 0.08  # junction signal left in a gap
_VESICLE_SIGMA = 1.2  # px


# --- tissue ---


def tissue(shape: tuple[int, int], style: Style, rng: np.random.Generator) -> np.ndarray:
    """A partition of ``shape`` into cells (int64 ids, no background)."""
    d = style.cell_diameter
    margin = math.ceil(d * max(style.giant_scale[1], 2.0))
    extent, offset, angle = shape, (0.0, 0.0), None
    if style.elongation > 1:  # area-preserving stretch along a random direction: cells elongate across it
        angle = rng.uniform(0, math.pi)
        corners = _stretch(
            np.array([0, 0, shape[0], shape[0]]), np.array([0, shape[1], 0, shape[1]]), style.elongation, angle
        )
        offset = (-corners[0].min(), -corners[1].min())
        extent = (math.ceil(np.ptp(corners[0])), math.ceil(np.ptp(corners[1])))
    domain = (extent[0] + 2 * margin, extent[1] + 2 * margin)
    centres, radii = _pack_cells(domain, style, rng)
    wiggle = style.wiggle_scale * d
    amplitude = style.irregularity * d
    yy, xx = np.meshgrid(np.arange(shape[0], dtype=float), np.arange(shape[1], dtype=float), indexing="ij")
    yy += amplitude * _smooth_field(rng, shape, wiggle)
    xx += amplitude * _smooth_field(rng, shape, wiggle)
    if angle is not None:
        yy, xx = _stretch(yy, xx, style.elongation, angle)
    yy += margin + offset[0]
    xx += margin + offset[1]
    # Power diagram (distance^2 - r^2) as a Euclidean nearest neighbour in 3D: each seed is lifted to the height
    # sqrt(R^2 - r^2), R the largest radius.
    lift = np.sqrt(radii.max() ** 2 - radii**2)
    tree = cKDTree(np.column_stack([centres, lift]))
    queries = np.column_stack([yy.ravel(), xx.ravel(), np.zeros(yy.size)])
    return tree.query(queries, workers=-1)[1].reshape(shape).astype(np.int64)


def _stretch(yy: np.ndarray, xx: np.ndarray, elongation: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * yy + s * xx, -s * yy + c * xx
    u, v = u / math.sqrt(elongation), v * math.sqrt(elongation)
    return c * u - s * v, s * u + c * v


def non_tissue(regions: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Merge the cells that lie mostly outside a smooth blob covering ``fraction`` of the field into one region."""
    field = _smooth_field(rng, regions.shape, max(regions.shape) / 1.5)
    outside = field > np.quantile(field, fraction)
    ids, index = np.unique(regions, return_inverse=True)
    share = np.bincount(index.ravel(), weights=outside.ravel()) / np.bincount(index.ravel())
    gone = share[index.reshape(regions.shape)] > 0.5
    if gone.all():
        return regions
    return np.where(gone, -1, regions)


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


def render(
    boundary: np.ndarray, labels: np.ndarray, style: Style, rng: np.random.Generator, outside: np.ndarray | None
) -> np.ndarray:
    """The microscope image of a tissue given its 1-px boundaries, cell labels and non-tissue pixels (or None)."""
    membrane = _membrane(boundary, labels, style, rng)
    membrane += _puncta(boundary, style, rng)
    cells = labels.max()
    cytoplasm = style.cytoplasm * rng.lognormal(-(style.cytoplasm_cv**2) / 2, style.cytoplasm_cv, cells + 1)
    cytoplasm[0] = style.cytoplasm
    if outside is not None:  # no cytoplasm and half the haze where there is no tissue
        cytoplasm[np.unique(labels[outside])] = -0.5 * style.background
    signal = style.background + cytoplasm[labels] + membrane
    if style.vesicles > 0:
        signal += _vesicles(boundary | (outside if outside is not None else False), cells, style, rng)
    if style.uneven > 0:
        ramp = np.add.outer(*(np.linspace(-0.5, 0.5, s) * rng.normal(0, 1) for s in boundary.shape))
        field = 0.5 * _smooth_field(rng, boundary.shape, max(boundary.shape) / 1.5) + ramp
        signal *= 1 + style.uneven * field / np.abs(field).max()
    if style.blur_sigma > 0:
        signal = ndi.gaussian_filter(signal, style.blur_sigma)
    if style.defocus > 0:
        signal = _defocus(signal, style, rng)
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
    if style.gap_fraction > 0:  # stretches of junction without signal, constant across the junction's width
        along = _smooth_field(rng, boundary.shape, 0.3 * style.cell_diameter)[iy, ix]
        gap = 1 / (1 + np.exp(4 * (along - ndtri(style.gap_fraction))))
        profile *= 1 - (1 - _GAP_LEVEL) * gap
    if style.dots > 0:  # the signal broken into dots (E-cadherin clusters) a few px apart
        spots = np.clip(_smooth_field(rng, boundary.shape, 2.5)[iy, ix], 0, None) ** 2
        profile *= (1 - style.dots) + style.dots * spots / max(spots[boundary].mean(), 1e-6)
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


def _vesicles(boundary: np.ndarray, n_cells: int, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Bright vesicles inside cells, at least 3 px from any junction: ``style.vesicles`` per cell on average."""
    inside = np.flatnonzero(ndi.distance_transform_edt(~boundary) > 3)
    spots = np.zeros(boundary.size)
    if len(inside):
        at = rng.choice(inside, size=min(len(inside), rng.poisson(style.vesicles * n_cells)), replace=False)
        spots[at] = rng.exponential(0.6, len(at)) * 2 * math.pi * _VESICLE_SIGMA**2
    return ndi.gaussian_filter(spots.reshape(boundary.shape), _VESICLE_SIGMA)


def _defocus(signal: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Blend in a strongly blurred copy over smooth patches covering about ``style.defocus`` of the field."""
    field = _smooth_field(rng, signal.shape, max(signal.shape) / 2.5)
    weight = np.clip(2 * (field - np.quantile(field, 1 - style.defocus)), 0, 1)
    return signal + weight * (ndi.gaussian_filter(signal, 2.5 + 2 * style.blur_sigma) - signal)
