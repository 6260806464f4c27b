"""Joint image/target augmentation that cuts training tiles out of whole images.

Geometry (rotation, scale, shear, the eight dihedral views, a random position) moves image and targets together;
intensity changes (gamma, contrast, noise, blur) touch the image only.

How 1-px targets survive interpolation: an interpolated outline mask loses its 1-px, 8-connected topology whatever
the threshold. So warps never touch the outline mask. The *cells* are warped instead, as a partition of the plane
(every boundary pixel given to its nearest cell) with nearest-neighbour sampling, which keeps them whole regions;
the warped partition then gets fresh 1-px outlines (``postprocess.outlines_from_regions``), each line placed on the
pixel nearest to the original boundary (the distance to the outline is warped bilinearly and used as tie-breaker).
Seeds are compact blobs and are warped with nearest-neighbour sampling; the dilated channels are recomputed. The
dihedral views and plain crops are exact and are applied to the precomputed targets directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .postprocess import labels_from_outlines, outlines_from_regions
from .targets import IGNORE_BIT, pack

SEED_BIT = np.uint8(1 << 5)


@dataclass(frozen=True)
class Augmentation:
    """How much to augment; the probabilities are drawn independently for every tile.

    Ranges follow EPySeg's defaults: rotation by any angle, scale ``U(1 - scale, 1 + scale)``, shear
    ``U(-shear, shear)``, gamma log-uniform in ``[1/gamma, gamma]``, contrast factor ``U(1 - contrast, 1 + contrast)``,
    Gaussian noise of standard deviation ``U(0, noise)`` and Gaussian blur of sigma ``U(0, blur)`` (image in [0, 1]).
    """

    dihedral: bool = True
    p_geometric: float = 0.5
    rotation: float = 180.0
    scale: float = 0.25
    shear: float = 0.25
    p_intensity: float = 0.5
    gamma: float = 2.0
    contrast: float = 0.3
    p_noise: float = 0.3
    noise: float = 0.08
    p_blur: float = 0.3
    blur: float = 1.5


DEFAULT = Augmentation()
NONE = Augmentation(dihedral=False, p_geometric=0.0, p_intensity=0.0, p_noise=0.0, p_blur=0.0)


@dataclass
class Source:
    """A whole training image prepared for tiling (see ``prepare``)."""

    image: np.ndarray  # (H, W) float32, normalised network input
    packed: np.ndarray  # (H, W) uint8, packed EPySeg targets (``targets.packed_targets``)
    regions: np.ndarray  # (H, W) int32, the cells with every boundary pixel given to its nearest cell
    depth: np.ndarray  # (H, W) float32, distance to the nearest boundary pixel

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape


def prepare(image: np.ndarray, outlines: np.ndarray, packed: np.ndarray) -> Source:
    """Bundle a normalised image, its outline mask and its packed targets with what warps need.

    Parameters
    ----------
    image : (H, W) float array, already normalised.
    outlines : (H, W) array, non-zero on 1-px boundaries.
    packed : (H, W) uint8, ``targets.packed_targets(outlines)``.
    """
    bonds = outlines != 0
    labels = labels_from_outlines(outlines).astype(np.int32)
    if bonds.any() and labels.any():
        depth = ndi.distance_transform_edt(~bonds)
        # Give each boundary pixel the label of its nearest cell pixel.
        _, (cy, cx) = ndi.distance_transform_edt(labels == 0, return_indices=True)
        regions = labels[cy, cx]
    else:
        depth = np.full(bonds.shape, max(bonds.shape), np.float32)
        regions = labels
    return Source(image.astype(np.float32, copy=False), packed, regions, depth.astype(np.float32))


def random_tile(
    source: Source, tile: int, rng: np.random.Generator, augmentation: Augmentation = NONE
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented training tile.

    Parameters
    ----------
    source : a prepared image (``prepare``).
    tile : tile side in px.
    rng : random generator (the only source of randomness).
    augmentation : what to apply; ``NONE`` gives plain random crops.

    Returns
    -------
    image : (tile, tile) float32
    packed : (tile, tile) uint8, packed targets matching ``image``.
    """
    a = augmentation
    if rng.random() < a.p_geometric:
        image, packed = _warped_tile(source, tile, rng, a)
    else:
        y, x = _corner(source.shape, tile, rng)
        image, packed = window(source.image, y, x, tile), window(source.packed, y, x, tile)
    if a.dihedral:
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        image, packed = (np.rot90(v[:, ::-1] if flip else v, k) for v in (image, packed))
    image = np.array(image, np.float32)
    return intensity(image, rng, a), np.ascontiguousarray(packed)


def intensity(image: np.ndarray, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    """Random gamma/contrast, blur and Gaussian noise on a float32 image in [0, 1] (modified in place)."""
    a = augmentation
    if rng.random() < a.p_intensity:
        np.clip(image, 0, 1, out=image)
        image **= np.float32(np.exp(rng.uniform(-1, 1) * np.log(a.gamma)))
        mean = image.mean()
        image -= mean
        image *= np.float32(rng.uniform(1 - a.contrast, 1 + a.contrast))
        image += mean
    if rng.random() < a.p_blur:
        ndi.gaussian_filter(image, rng.uniform(0, a.blur), output=image, mode="reflect")
    if rng.random() < a.p_noise:
        image += rng.normal(0, rng.uniform(0, a.noise), image.shape).astype(np.float32)
    return image


def _corner(shape: tuple[int, int], size: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random top-left corner for a ``size`` window, inside the image where it fits, centred where it does not."""
    return tuple(int(rng.integers(0, n - size + 1)) if n >= size else (n - size) // 2 for n in shape)


def window(plane: np.ndarray, y: int, x: int, size: int) -> np.ndarray:
    """``plane[y:y+size, x:x+size]``, mirrored where the window leaves the plane."""
    h, w = plane.shape
    y0, y1, x0, x1 = max(y, 0), min(y + size, h), max(x, 0), min(x + size, w)
    crop = plane[y0:y1, x0:x1]
    pad = ((y0 - y, y + size - y1), (x0 - x, x + size - x1))
    # 'symmetric' here is scipy's 'reflect', the mode of the warps below.
    return np.pad(crop, pad, mode="symmetric") if any(p for pair in pad for p in pair) else crop


def _warped_tile(source: Source, tile: int, rng: np.random.Generator, a: Augmentation) -> tuple[np.ndarray, np.ndarray]:
    angle = np.deg2rad(rng.uniform(-a.rotation, a.rotation))
    zoom = rng.uniform(1 - a.scale, 1 + a.scale)
    shear = rng.uniform(-a.shear, a.shear)
    cos, sin = np.cos(angle), np.sin(angle)
    # Output pixel p maps to source pixel centre + matrix @ (p - tile centre).
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) / zoom
    reach = np.abs(matrix).sum(axis=1) * tile / 2  # half extent of the sampled source area along y and x
    centre = [rng.uniform(r, n - r) if n > 2 * r else n / 2 for n, r in zip(source.shape, reach, strict=True)]
    half = (tile - 1) / 2
    offset = np.asarray(centre) - 0.5 - matrix @ np.array([half, half])

    def warp(plane: np.ndarray, order: int) -> np.ndarray:
        return ndi.affine_transform(
            plane, matrix, offset, output_shape=(tile, tile), order=order, mode="reflect", prefilter=False
        )

    image = warp(source.image, 1)
    regions = warp(source.regions, 0)
    depth = warp(source.depth, 1)
    seed = warp(source.packed & SEED_BIT, 0) != 0
    ignore = warp(source.packed & IGNORE_BIT, 0)
    bonds = outlines_from_regions(regions, bonds=-depth) != 0
    return image, pack(bonds, seed & ~bonds) | ignore
