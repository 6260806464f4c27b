"""``segment``: the one call that turns an image into Tissue Analyzer outlines, cell labels and a bond map."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import backends, cells, checks, classical, lazy, models, postprocess, predict, rescale
from .errors import InputError

log = logging.getLogger(__name__)

CHANNEL_AXES = "CS"
BIG_PLANE = 1 << 24  # px: planes from this size on give memory back as soon as it is freed (see lazy.bound_memory)


@dataclass
class Segmentation:
    """What ``segment`` returns; arrays have the input's shape without its channel axis.

    A plane in which no cell is found (e.g. a constant image) has empty outlines and labels. With ``out=``, the
    arrays are the Zarr arrays written there (labels always uint32).
    """

    outlines: np.ndarray  # uint8, 255 on 1-px boundaries (8-connected), cells = 4-connected regions of 0
    labels: np.ndarray  # uint16 (uint32 above 65535 cells in a plane), 0 on boundaries
    bonds: np.ndarray  # float32 boundary likelihood in [0, 1]
    axes: str  # e.g. "YX", "ZYX", "TZYX"
    n_cells: list[int]  # per plane, in stack order


def segment(
    image: Any,
    model: str | Path | models.Model | None = None,
    *,
    axes: str | None = None,
    channel: int | None = None,
    invert: bool = False,
    normalization: str | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    batch: int = 8,
    tta: str = "none",
    min_size: int = 0,
    backend: str = "auto",
    out: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Segmentation:
    """Segment the cells of a 2D epithelium image, or of every plane of a stack.

    Parameters
    ----------
    image : array, or a lazy image
        2D (Y, X), a stack or time-lapse (e.g. Z, Y, X), or multichannel (channel first or last), any integer or
        float dtype. Membranes bright on a dark background (see ``invert``). Images larger than memory: a Dask or
        Zarr array, an OME-Zarr group, a Zarr store (``tifffile.imread(path, aszarr=True)``) or the path of a Zarr
        folder or a TIFF, read a row of tiles at a time and segmented out of core (see ``lazy``).
    model : name, path or loaded model
        ``None`` for the shipped default model; a published EPySeg model name; a user model name; an .h5 path.
    axes : str, optional
        tifffile/ImageJ axis letters (``"YX"``, ``"ZYX"``, ``"YXC"``, ``"TZCYX"`` ...); guessed from the shape if
        omitted (see ``guess_axes``). ``C`` or ``S`` is the channel axis, ``Y``/``X`` the plane, the rest stacks.
    channel : int, optional
        Which channel to segment (0-based) when the image has several.
    invert : bool
        Set for dark membranes on a bright background.
    normalization : "minmax" or "percentile"
        Min-max over the whole plane (EPySeg's default) or the 2-99.8 % percentiles; default from the model card.
    tile, overlap, batch : int
        Tile size (16-2048 px), context (even, at most the tile) and tiles per network call; tile and overlap
        default to the model card's.
    tta : "none", "flip" or "epyseg"
        Test-time augmentation: 1 pass, the 8 dihedral views, or EPySeg's 13 passes.
    min_size : int
        Cells smaller than this (px) are merged into a neighbour.
    backend : "auto", "tensorflow" or "openvino"
        Where the network runs (see ``backends``): ``auto`` is OpenVINO on a CPU when it is installed, TensorFlow on
        a GPU. Both give the same outputs to about 1e-5.
    out : path, optional
        A new Zarr folder (``*.zarr``) that receives ``outlines``, ``labels`` and ``bonds``, written tile by tile in
        memory bounded by tiles, complete or not at all; the result's arrays are then those Zarr arrays.
    progress : callable(done, total), optional
        Called after every batch of tiles; raising ``errors.Cancelled`` from it stops the job.

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> result = segment(image)  # doctest: +SKIP
    >>> result.labels.max(), result.outlines.dtype  # doctest: +SKIP
    (412, dtype('uint8'))
    >>> segment("scan.ome.zarr", out="scan-cells.zarr").labels  # doctest: +SKIP
    <Array file://scan-cells.zarr/labels shape=(32768, 32768) dtype=uint32>
    """
    check_options(
        axes=axes, channel=channel, invert=invert, normalization=normalization, tile=tile, overlap=overlap,
        batch=batch, tta=tta, min_size=min_size, backend=backend, out=out, progress=progress,
    )  # fmt: skip
    is_lazy = lazy.is_lazy(image)
    with lazy.opened(image) if is_lazy else nullcontext((as_array(image), None)) as (array, found_axes):
        planes, out_axes, stack_shape = as_planes(array, axes or found_axes, channel)
        network, run = backends.load(model, backend)
        card = network.card
        tile = card.tile if tile is None else tile
        tiling = predict.Tiling(tile, min(card.overlap, tile) // 2 * 2 if overlap is None else overlap, batch)
        total = sum(predict.count_tiles(p.shape, tiling) for p in planes)
        done = 0

        def on_batch(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        def add_work(n: int) -> None:
            nonlocal total
            total += n

        steps = Steps(
            network, run, tiling, normalization or card.normalization, invert, tta, min_size, on_batch, add_work
        )
        if out is None and not is_lazy:
            return _assemble([segment_plane(p, steps) for p in planes], out_axes, stack_shape)
        planes = [p if isinstance(p, np.ndarray) else lazy.Plane(p) for p in planes]
        return _out_of_core(planes, out_axes, stack_shape, out, steps)


_OPTIONS: dict[str, Callable[[str, Any], Any]] = {
    "axes": lambda name, value: checks.text(name, value, optional=True),
    "channel": lambda name, value: checks.integer(name, value, 0, optional=True),
    "invert": checks.flag,
    "normalization": lambda name, value: checks.choice(name, value, predict.NORMALIZATIONS, optional=True),
    "tta": lambda name, value: checks.choice(name, value, predict.TTA_MODES),
    "min_size": lambda name, value: checks.integer(name, value, 0),
    "out": lambda name, value: checks.path(name, value, optional=True),
    "backend": lambda name, value: backends.check(value),
    "progress": checks.function,
}


def check_options(tile: int | None = None, overlap: int | None = None, batch: int = 8, **options: Any) -> None:
    """Check options of ``segment`` (any of them, by name) before any work; ``InputError`` names the first bad one.

    Examples
    --------
    >>> check_options(tile="abc")
    Traceback (most recent call last):
    ...
    epyseg_ij.errors.InputError: tile must be an integer from 16 to 2048 or None, got 'abc' (str)
    """
    predict.check_tiling(tile, overlap, batch)
    for name, value in options.items():
        if name not in _OPTIONS:
            raise InputError(f"unknown option {name!r} of segment")
        _OPTIONS[name](name, value)


def as_array(image) -> np.ndarray:
    """``image`` as a numpy array, or ``InputError`` for what numpy cannot turn into one (ragged lists...)."""
    try:
        return np.asarray(image)
    except (ValueError, TypeError) as error:
        raise InputError(f"image must be a numpy array (or array-like), got {type(image).__name__}: {error}") from None


@dataclass(frozen=True)
class Steps:
    """What ``segment`` does to each plane; ``run`` is the network (``backends.predictor``), None for the classical
    baseline; ``on_batch`` is called with the number of tiles after each network batch, ``add_work`` with the
    number of tiles added to the job (a plane segmented again at a reduced size)."""

    network: models.Model
    run: backends.Predictor | None
    tiling: predict.Tiling
    normalization: str
    invert: bool
    tta: str
    min_size: int
    on_batch: Callable[[int], None]
    add_work: Callable[[int], None] = lambda n: None


def segment_plane(plane: np.ndarray, steps: Steps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outlines, labels and bonds of one 2D plane; memory bounded by a row of tiles and a band of pixels.

    A plane (below ``BIG_PLANE``) whose cells are larger than the card's ``max_cell_diameter`` is segmented again at
    a reduced size (``rescale``).
    """
    outlines, labels, bonds = _segment_plane(plane, steps)
    largest = steps.network.card.max_cell_diameter
    if largest is None or steps.run is None or plane.size >= BIG_PLANE:
        return outlines, labels, bonds
    diameter = rescale.median_diameter(labels)
    factor = rescale.reduction(diameter, largest)
    if factor == 1:
        return outlines, labels, bonds
    log.info("cells of %.0f px across: segmenting at 1/%d size", diameter, factor)
    small = rescale.shrink(plane, factor)
    steps.add_work(predict.count_tiles(small.shape, steps.tiling))
    _, small_labels, small_bonds = _segment_plane(small, steps)
    bonds = rescale.grow_bonds(small_bonds, plane.shape)
    outlines, labels = _cells(bonds, rescale.grow_markers(small_labels, plane.shape, factor), steps, plane)
    return outlines, labels, bonds


def _segment_plane(plane: np.ndarray, steps: Steps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if plane.size >= BIG_PLANE:
        lazy.bound_memory()
    bonds = code = None
    for y, bonds_rows, code_rows in network_maps(plane, steps):
        if len(bonds_rows) == plane.shape[0]:  # the whole plane at once
            bonds, code = bonds_rows, code_rows
            break
        if bonds is None:
            bonds, code = np.empty(plane.shape, np.float32), np.empty(plane.shape, np.uint8)
        bonds[y : y + len(bonds_rows)], code[y : y + len(code_rows)] = bonds_rows, code_rows
    del bonds_rows, code_rows
    if plane.size >= BIG_PLANE:  # the network's buffers back to the system before post-processing
        backends.release(steps.network)
    markers = cells.choose_markers(code)
    del code
    outlines, labels = _cells(bonds, markers, steps, plane)
    return outlines, labels, bonds


def network_maps(plane: np.ndarray, steps: Steps) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(y, bonds, code)`` for consecutive bands of rows of a plane: the bond map and the cell-interior code that
    ``cells`` turns into cells (the network's a row of tiles at a time, the classical baseline's whole)."""
    intensity = predict.intensity_range(plane, steps.normalization, steps.invert)
    transforms = predict.tta_transforms(steps.tta, plane, intensity)
    if steps.run is None:  # the classical baseline: its seeds arrive as MARKER bits
        bands = iter([(0, *classical.bonds_and_code(predict.read_rows(plane, 0, plane.shape[0]), intensity))])
        steps.on_batch(predict.count_tiles(plane.shape, steps.tiling))
    else:
        rows = predict.predict_rows(plane, steps.run, steps.tiling, intensity, transforms, steps.on_batch)
        bands = ((y, *postprocess.decode(probs, steps.network.card.outputs)) for y, probs in rows)
    for y, bonds, code in bands:
        if intensity.high == intensity.low:  # a constant image holds no cells
            code[:] = 0
        yield y, bonds, code


def _cells(bonds: np.ndarray, markers: np.ndarray, steps: Steps, plane, window=...) -> tuple[np.ndarray, np.ndarray]:
    """Outlines and labels from the bond map and markers of ``plane[window]`` (read only for a faint-interface
    merge)."""
    card = steps.network.card
    merge_below = cells.WEAK_INTERFACE if card.outputs == "epyseg7" else None  # validated for these
    faint = card.merge_faint if steps.run is not None else None
    evidence = {"image": np.asarray(plane[window]), "faint": faint, "dark_membranes": steps.invert} if faint else {}
    return cells.find_cells(bonds, markers, steps.min_size, merge_below, **evidence)


def _out_of_core(planes: list, axes: str, stack_shape: tuple, out, steps: Steps) -> Segmentation:
    """Segment planes into a Zarr group (``out``, or a temporary one read back into memory): see ``lazy``."""
    shape = (*stack_shape, *planes[0].shape)
    attrs = {"axes": axes, "model": steps.network.name}
    lazy.bound_memory()
    with lazy.writing(out, shape, min(steps.tiling.tile, shape[-2]), attrs) as output:
        n_cells = []
        for index, plane in zip(np.ndindex(stack_shape), planes, strict=True):
            view = output.view(index)
            for y, bonds, code in network_maps(plane, steps):
                view["bonds"][y : y + len(bonds)] = bonds
                view["code"][y : y + len(code)] = code
            for block in lazy.blocks(plane.shape):
                markers = cells.choose_markers(view["code"][block.seen])
                outlines, _ = _cells(view["bonds"][block.seen], markers, steps, plane, block.seen)
                view["outlines"][block.own] = outlines[block.inner]
            n_cells.append(lazy.number_cells(view["outlines"], view["labels"], plane.shape))
        output.group.attrs["epyseg_ij"] = {**attrs, "n_cells": n_cells}
        if out is None:
            labels = output.group["labels"][...]
            labels = labels.astype(np.uint16) if max(n_cells) <= np.iinfo(np.uint16).max else labels
            return Segmentation(output.group["outlines"][...], labels, output.group["bonds"][...], axes, n_cells)
    group = lazy.open_output(out)
    return Segmentation(group["outlines"], group["labels"], group["bonds"], axes, n_cells)


def guess_axes(shape: tuple[int, ...], channel: int | None = None) -> str:
    """Axis letters for an array without metadata.

    2D is ``YX``. A last axis of 2-4 is colour/channels (``YXC``); with ``channel`` given, a first (or second, in
    4D) axis of 2-4 is channels; any other leading axis is a stack (``Z``, then ``T``).

    Examples
    --------
    >>> guess_axes((512, 512)), guess_axes((512, 512, 3)), guess_axes((3, 512, 512), channel=1)
    ('YX', 'YXC', 'CYX')
    >>> guess_axes((10, 512, 512)), guess_axes((5, 2, 64, 64), channel=0)
    ('ZYX', 'ZCYX')
    """
    ndim = len(shape)
    if ndim < 2 or ndim > 5:
        raise InputError(f"unsupported image dimensions {shape}: expected 2D to 5D")
    if ndim == 2:
        return "YX"
    small = [2 <= n <= 4 for n in shape]
    if small[-1]:
        return "TZYXC"[5 - ndim :]
    if channel is not None and small[0] and ndim == 3:
        return "CYX"
    if channel is not None and ndim >= 4 and small[-3]:
        return "TZCYX"[5 - ndim :]
    return "TZYX"[4 - ndim :] if ndim <= 4 else "TZCYX"


def as_planes(image: np.ndarray, axes: str | None, channel: int | None) -> tuple[list[np.ndarray], str, tuple]:
    """Check an image and split it into 2D planes; also return the output axes and stack shape."""
    if image.dtype.kind not in "uifb" or image.size == 0:
        raise InputError(f"not a usable image: dtype {image.dtype}, shape {image.shape}")
    if image.dtype == bool:
        image = image.view(np.uint8)
    axes = (axes or guess_axes(image.shape, channel)).upper()
    if len(axes) != image.ndim or len(set(axes)) != len(axes) or not {"Y", "X"} <= set(axes):
        raise InputError(f"axes {axes!r} do not fit an image of shape {image.shape}")
    chan = [i for i, a in enumerate(axes) if a in CHANNEL_AXES]
    if len(chan) > 1:
        raise InputError(f"axes {axes!r} have several channel axes")
    if chan:
        n = image.shape[chan[0]]
        if channel is None and n > 1:
            raise InputError(f"the image has {n} channels: choose the membrane channel (channel=1..{n} in ImageJ)")
        index = 0 if channel is None else channel
        if not 0 <= index < n:
            raise InputError(f"channel {index + 1} does not exist: the image has {n} channel(s)")
        image = np.take(image, index, axis=chan[0])
        axes = axes.replace(axes[chan[0]], "")
    elif channel not in (None, 0):
        raise InputError(f"channel {channel + 1} does not exist: the image has a single channel")
    stack = [a for a in axes if a not in "YX"]
    image = np.moveaxis(image, [axes.index("Y"), axes.index("X")], [-2, -1])
    out_axes = "".join(stack) + "YX"
    stack_shape = image.shape[:-2]
    planes = list(image.reshape(-1, *image.shape[-2:])) if stack else [image]
    return planes, out_axes, stack_shape


def _assemble(results, axes: str, stack_shape: tuple) -> Segmentation:
    outlines, labels, bonds = zip(*results, strict=True)
    n_cells = [int(lab.max()) for lab in labels]
    if not stack_shape:
        return Segmentation(outlines[0], labels[0], bonds[0], axes, n_cells)
    dtype = np.uint32 if any(lab.dtype == np.uint32 for lab in labels) else np.uint16
    shape = (*stack_shape, *outlines[0].shape)
    return Segmentation(
        np.stack(outlines).reshape(shape),
        np.stack([lab.astype(dtype, copy=False) for lab in labels]).reshape(shape),
        np.stack(bonds).reshape(shape),
        axes,
        n_cells,
    )
