"""Training data: find image/mask pairs, read and check them, and stream augmented tiles in fixed-size batches.

Two layouts are recognised in every data folder:

* **Tissue Analyzer**: ``foo.tif`` with its mask in ``foo/handCorrection.tif`` (or ``.png``; or the exact
  ``foo/groundTruth.tif`` that ``synth`` writes, when there is no ``handCorrection``). TA's own 1-px white
  frame around the mask is removed (the border rows/columns then copy their inner neighbours).
* **Image/mask pairs**: ``foo.tif`` with ``foo_mask.tif``, ``foo_labels.tif`` or ``foo_outlines.tif`` beside it (any
  image extension), or an ``images/`` folder with a ``masks/`` or ``labels/`` folder holding files of the same names.

A mask may come with an *ignore mask* for partial annotations (``foo/ignore.tif`` in the Tissue Analyzer layout,
``foo_ignore.tif`` beside a pair): its non-zero pixels get no loss, e.g. regions left unannotated or the unsegmented
border of a reference that leaves border cells out.

A mask is an outline mask or a label image (``epyseg_ij.masks`` reads it). A mask that holds no cells (every pixel
the same, e.g. an all-black or all-white ``handCorrection.tif``, or only Tissue Analyzer's frame) teaches nothing:
``load_pairs`` leaves it out with a warning naming it, and refuses to go on when no mask is left. Any other unusable
mask (wrong size, not a mask) is an error naming the file.
Everything derived from masks (targets, caches) lives in the cache directory, never in the data folders.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import augment, checks, io, targets
from .errors import InputError
from .masks import NoCells, is_grey, outlines_from_mask, read_mask

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
TA_MASKS = ("handCorrection.tif", "handCorrection.tiff", "handCorrection.png", io.GROUND_TRUTH)
MASK_SUFFIXES = ("_mask", "_labels", "_outlines")
IGNORE, IGNORE_EXTENSIONS = "ignore", (".tif", ".tiff", ".png")  # NAME/ignore.tif or NAME_ignore.tif
IMAGE_FOLDER, MASK_FOLDERS = "images", ("masks", "labels")
MAX_TILE = 2048  # px, as for prediction
_LIST = 5  # how many file names an error message lists


@dataclass(frozen=True)
class Pair:
    """An image and its mask; ``corrected`` tells whether a person changed a machine-made mask (None: unknown)."""

    image: Path
    mask: Path
    layout: str  # "ta" or "pair"
    corrected: bool | None = None
    ignore: Path | None = None  # non-zero where the mask says nothing (a partial annotation): no loss there
    weight: float = 1.0  # how often its tiles are drawn, per pixel, relative to other pairs


@dataclass
class TrainingImage:
    """One image read, checked and prepared for tiling."""

    name: str
    source: augment.Source
    weight: float = 1.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.source.shape


# ------------------------------------------------------------------------------------------------------ discovery


def find_pairs(
    folders: Sequence[str | os.PathLike], corrected_only: bool = False, weights: Sequence[float] | None = None
) -> list[Pair]:
    """All image/mask pairs in the data folders (layouts in the module docstring).

    Parameters
    ----------
    folders : paths of data folders.
    corrected_only : bool
        Keep only Tissue Analyzer masks that a person changed after ``segment`` wrote them.
    weights : one positive number per folder, optional
        How often tiles of each folder are drawn, per pixel, relative to the others (default: 1 each), e.g. to
        give a few real images a fair share beside many synthetic ones.

    Returns
    -------
    list of Pair, in folder order then name order.

    Raises
    ------
    InputError
        A folder is missing or holds no images, an image has no mask, or nothing is left to train on.
    """
    if not folders:
        raise InputError("no data folder given")
    weights = check_weights(weights, len(folders))
    try:
        pairs = [
            dataclasses.replace(pair, weight=w)
            for folder, w in zip(folders, weights, strict=True)
            for pair in _folder_pairs(Path(folder))
        ]
    except OSError as error:  # an unreadable folder or mask
        raise InputError(f"cannot read {error.filename or 'the data folders'}: {error.strerror or error}") from None
    machine = [p for p in pairs if p.corrected is False]
    if corrected_only:
        kept = [p for p in pairs if p.corrected]
        if not kept:
            raise InputError(
                f"none of the {len(pairs)} masks was corrected by hand ({len(machine)} unchanged machine outputs, "
                f"{len(pairs) - len(machine)} of unknown origin): correct handCorrection.tif files first"
            )
        log.info("training on %d hand-corrected of %d masks", len(kept), len(pairs))
        return kept
    if machine:
        log.warning(
            "%d of %d masks are unchanged machine output (e.g. %s); use corrected_only to skip them",
            len(machine),
            len(pairs),
            machine[0].mask,
        )
    return pairs


def check_weights(weights: Sequence[float] | None, n_folders: int) -> list[float]:
    """One positive sampling weight per data folder (default: 1 each)."""
    if weights is None:
        return [1.0] * n_folders
    if not isinstance(weights, list | tuple):
        raise InputError(f"weights must be a list of numbers, one per data folder, not {weights!r}")
    weights = [checks.number(f"weights[{i}]", w, above=0) for i, w in enumerate(weights)]
    if len(weights) != n_folders:
        raise InputError(f"weights: {len(weights)} given for {n_folders} data folder(s); give one per folder")
    return weights


def _folder_pairs(folder: Path) -> list[Pair]:
    if not folder.is_dir():
        raise InputError(f"data folder not found: {folder}")
    if (folder / IMAGE_FOLDER).is_dir():
        return _images_masks_pairs(folder)
    if any((folder / m).exists() for m in TA_MASKS):
        raise InputError(f"{folder} is a Tissue Analyzer image folder: give the folder above it, {folder.parent}")
    files = _image_files(folder)
    images = [p for p in files if not p.stem.endswith((*MASK_SUFFIXES, f"_{IGNORE}"))]
    if not images:
        raise InputError(f"no images in data folder {folder}")
    by_stem = {p.stem: p for p in files}
    pairs, missing = [], []
    for image in images:
        ta = [folder / image.stem / m for m in TA_MASKS if (folder / image.stem / m).is_file()]
        side = [by_stem[image.stem + s] for s in MASK_SUFFIXES if image.stem + s in by_stem]
        if ta:
            ignore = _first_file(folder / image.stem / f"{IGNORE}{e}" for e in IGNORE_EXTENSIONS)
            pairs.append(Pair(image, ta[0], "ta", io.is_hand_corrected(ta[0]), ignore))
        elif side:
            ignore = _first_file(folder / f"{image.stem}_{IGNORE}{e}" for e in IGNORE_EXTENSIONS)
            pairs.append(Pair(image, side[0], "pair", ignore=ignore))
        else:
            missing.append(image.name)
    if missing:
        raise InputError(
            f"{len(missing)} image(s) in {folder} have no mask ({', '.join(missing[:_LIST])}"
            f"{', ...' if len(missing) > _LIST else ''}): expected NAME/handCorrection.tif or NAME_mask.tif"
        )
    return pairs


def _images_masks_pairs(folder: Path) -> list[Pair]:
    masks_dir = next((folder / m for m in MASK_FOLDERS if (folder / m).is_dir()), None)
    if masks_dir is None:
        raise InputError(f"{folder} has an {IMAGE_FOLDER}/ folder but no {' or '.join(MASK_FOLDERS)}/ folder")
    images = _image_files(folder / IMAGE_FOLDER)
    if not images:
        raise InputError(f"no images in data folder {folder / IMAGE_FOLDER}")
    masks = {m.stem: m for m in _image_files(masks_dir)}
    missing = [i.name for i in images if i.stem not in masks]
    if missing:
        raise InputError(
            f"{len(missing)} image(s) in {folder / IMAGE_FOLDER} have no mask of the same name in {masks_dir} "
            f"({', '.join(missing[:_LIST])}{', ...' if len(missing) > _LIST else ''})"
        )
    return [Pair(i, masks[i.stem], "pair") for i in images]


def _first_file(paths) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


# ------------------------------------------------------------------------------------------------ reading images


def read_image(path: Path, channel: int | None = None) -> np.ndarray:
    """A 2D image plane from a file (``io.read_image``); ``channel`` picks one channel of a multichannel image."""
    from .pipeline import as_planes

    image = io.read_image(path)
    array, axes = image.array, image.axes
    if axes.endswith("S") and channel is None and is_grey(array):
        array, axes = array[..., 0], axes[:-1]
    try:
        planes = as_planes(array, axes, channel)[0]
    except InputError as error:
        raise InputError(f"{path.name}: {error}") from None
    if len(planes) != 1:
        raise InputError(f"{path} is a stack of {len(planes)} planes: training takes 2D images")
    return planes[0]


# ------------------------------------------------------------------------------------------------ loading, tiling


def load_pair(
    pair: Pair, normalization: str = "minmax", invert: bool = False, channel: int | None = None, cache: bool = True
) -> TrainingImage:
    """Read, check and prepare one image/mask pair for tiling.

    The image is normalised as ``segment`` will normalise it (``predict.intensity_range``); the mask becomes
    packed EPySeg targets (cached in ``targets.cache_dir()`` when ``cache``).
    """
    from .predict import intensity_range

    image = read_image(pair.image, channel)
    outlines = read_mask(pair.mask)
    if outlines.shape != image.shape:
        raise InputError(
            f"mask {pair.mask} is {outlines.shape[1]}x{outlines.shape[0]} px but its image {pair.image.name} is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    if image.dtype == bool:
        image = image.view(np.uint8)
    normalised = intensity_range(image, normalization, invert)(image)
    packed = targets.cached_packed_targets(outlines, cache)
    if pair.ignore is not None:
        ignore = read_image(pair.ignore) != 0
        if ignore.shape != image.shape:
            raise InputError(f"ignore mask {pair.ignore} is {ignore.shape[1]}x{ignore.shape[0]} px, its image "
                             f"{pair.image.name} {image.shape[1]}x{image.shape[0]}")  # fmt: skip
        if ignore.all():
            raise NoCells(f"{pair.ignore} ignores the whole image: nothing to learn from {pair.mask}")
        packed = packed | (ignore.view(np.uint8) * targets.IGNORE_BIT)
    return TrainingImage(pair.image.name, augment.prepare(normalised, outlines, packed), pair.weight)


def load_pairs(pairs: Sequence[Pair], **options) -> list[TrainingImage]:
    """``load_pair`` (same ``options``) for every pair; masks that hold no cells are left out with a warning.

    Raises
    ------
    InputError
        A pair is unusable (see ``load_pair``), or no mask holds cells.
    """
    images, empty = [], []
    for pair in pairs:
        try:
            images.append(load_pair(pair, **options))
        except NoCells as error:
            empty.append(str(error))
    if empty and not images:
        raise InputError(f"no mask holds cells, nothing to train on: {empty[0]}" + (" (and others)" * (len(empty) > 1)))
    for message in empty:
        log.warning("left out of training: %s", message)
    return images


def split(pairs: Sequence, val_fraction: float) -> tuple[list, list]:
    """Training and validation pairs: every k-th pair goes to validation (EPySeg's rule), at least one of each.

    Examples
    --------
    >>> pairs = [Pair(Path(f"{i}.tif"), Path(f"{i}_mask.tif"), "pair") for i in range(10)]
    >>> [p.image.name for p in split(pairs, 0.2)[1]]
    ['2.tif', '7.tif']
    """
    checks.number("val_fraction", val_fraction, 0, below=1)
    n = len(pairs)
    n_val = min(n - 1, max(1, round(n * val_fraction))) if val_fraction > 0 else 0
    if n_val <= 0:
        if val_fraction > 0:
            log.warning("one image only: no validation split, checkpoints are ranked by the training loss")
        return list(pairs), []
    step = n / n_val
    chosen = {int(step * (k + 0.5)) for k in range(n_val)}
    return [p for i, p in enumerate(pairs) if i not in chosen], [p for i, p in enumerate(pairs) if i in chosen]


def tile_batches(
    images: Sequence[TrainingImage],
    tile: int,
    batch: int,
    augmentation: augment.Augmentation = augment.DEFAULT,
    seed: int | Sequence[int] = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless batches of random augmented tiles; images are drawn in proportion to their area times their weight.

    Yields
    ------
    x : (batch, tile, tile, 1) float32
    y : (batch, tile, tile, 8) float32, the 0/1 targets and the loss weight (``targets.with_weights``).
    """
    rng = np.random.default_rng(seed)
    area = np.array([im.shape[0] * im.shape[1] * im.weight for im in images], float)
    weights = area / area.sum()
    while True:
        x = np.empty((batch, tile, tile, 1), np.float32)
        packed = np.empty((batch, tile, tile), np.uint8)
        for i, k in enumerate(rng.choice(len(images), size=batch, p=weights)):
            x[i, ..., 0], packed[i] = augment.random_tile(images[k].source, tile, rng, augmentation)
        yield x, targets.with_weights(packed)


def grid_tiles(images: Sequence[TrainingImage], tile: int, limit: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Fixed, unaugmented tiles on a regular grid (validation data); at most ``limit`` tiles, evenly picked.

    Returns
    -------
    x : (n, tile, tile, 1) float32
    y : (n, tile, tile, 8) float32, as ``tile_batches``
    """
    corners = []
    for k, im in enumerate(images):
        h, w = im.shape
        ys = np.linspace(0, max(h - tile, 0), max(1, -(-h // tile))).round().astype(int)
        xs = np.linspace(0, max(w - tile, 0), max(1, -(-w // tile))).round().astype(int)
        corners += [(k, y, x) for y in ys for x in xs]
    if len(corners) > limit:
        corners = [corners[i] for i in np.linspace(0, len(corners) - 1, limit).round().astype(int)]
    x = np.empty((len(corners), tile, tile, 1), np.float32)
    packed = np.empty((len(corners), tile, tile), np.uint8)
    for i, (k, y0, x0) in enumerate(corners):
        src = images[k].source
        x[i, ..., 0] = augment.window(src.image, y0, x0, tile)
        packed[i] = augment.window(src.packed, y0, x0, tile)
    return x, targets.with_weights(packed)


def dataset(
    images: Sequence[TrainingImage],
    tile: int,
    batch: int,
    augmentation: augment.Augmentation = augment.DEFAULT,
    seed: int | Sequence[int] = 0,
    workers: int | None = None,
):
    """A ``tf.data.Dataset`` of endless (x, y) batches from ``tile_batches``, made ahead in background threads.

    Parameters
    ----------
    workers : int, optional
        Parallel batch makers, each with its own random stream (default: ``default_workers()``).
    """
    from ._tf import tf

    tensorflow = tf()
    workers = workers or default_workers()
    signature = (
        tensorflow.TensorSpec((batch, tile, tile, 1), tensorflow.float32),
        tensorflow.TensorSpec((batch, tile, tile, targets.N_CHANNELS + 1), tensorflow.float32),
    )
    seeds = [int(s) for s in np.atleast_1d(seed)]

    def stream(worker):
        return tensorflow.data.Dataset.from_generator(
            lambda w: tile_batches(images, tile, batch, augmentation, seed=[*seeds, int(w)]),
            args=(worker,),
            output_signature=signature,
        )

    if workers == 1:
        return stream(0).prefetch(2)
    parallel = tensorflow.data.Dataset.range(workers).interleave(
        stream, cycle_length=workers, num_parallel_calls=workers, deterministic=False
    )
    return parallel.prefetch(2)


def default_workers() -> int:
    """Batch makers for ``dataset``: 1 when TensorFlow trains on the CPU (it needs the cores, and a step is so
    slow that one maker keeps up), up to 8 beside a GPU (half the cores)."""
    from ._tf import tf

    if not tf().config.list_physical_devices("GPU"):
        return 1
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def check_tile(tile: int) -> int:
    """A training tile size: a multiple of 32 (the network halves it five times), from 32 to 2048."""
    if not 32 <= checks.integer("tile", tile) <= MAX_TILE or tile % 32:
        raise InputError(f"the training tile must be a multiple of 32 px from 32 to {MAX_TILE}, got {tile}")
    return int(tile)


__all__ = [
    "Pair",
    "TrainingImage",
    "find_pairs",
    "load_pair",
    "load_pairs",
    "NoCells",
    "outlines_from_mask",
    "split",
    "tile_batches",
    "grid_tiles",
    "dataset",
]
