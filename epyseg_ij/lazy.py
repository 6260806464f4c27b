"""Huge images, lazily: Dask, Zarr, OME-Zarr and TIFF sources read a band at a time, results written to Zarr.

``segment`` runs such images (and any image given ``out=``) out of core, one plane at a time:

1. the network runs a row of tiles at a time (``predict.predict_rows``, reading those rows only) and writes the bond
   map and the cell-interior code to the Zarr group;
2. cells are found block by block (``BLOCK`` px a side, seen with ``CONTEXT`` px around), each block's own outlines
   written to the group;
3. the cells of the whole plane are numbered from those outlines block by block (``number_cells``): numbers are
   unique over the plane, a cell cut by block seams has one number, and the order is the in-memory one (raster
   order of each cell's first pixel).

Memory is bounded by a row of tiles and a block, whatever the size of the plane. A plane that fits in one block
gives exactly the in-memory result; with seams, each block sees ``CONTEXT`` px (many cell diameters) around it.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import files
from .cells import Tile
from .errors import InputError

BLOCK = 2048  # px: side of a post-processing block, context excluded
CONTEXT = 256  # px seen around a block: about 10 cell diameters, 4 times the context of cells' own tiles
CHUNK_WIDTH = 1024  # px: Zarr chunks are a row of tiles high (rows arrive that way) and this wide
M_MMAP_THRESHOLD, MMAP_THRESHOLD = -3, 1 << 20  # glibc's mallopt parameter, and 1 MiB (see bound_memory)
OME_AXES = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}


def is_lazy(image: Any) -> bool:
    """True for what ``segment`` reads lazily: Dask and Zarr arrays, Zarr groups and stores, and paths."""
    return isinstance(image, str | os.PathLike) or type(image).__module__.split(".")[0] in ("dask", "zarr", "tifffile")


@contextmanager
def opened(source: Any) -> Iterator[tuple[Any, str | None]]:
    """A lazy source as a Dask array and its axes when the source records them (OME-Zarr, TIFF), else None.

    Sources: a Dask array; a Zarr array; an OME-Zarr group (its full-resolution level); a Zarr store (e.g.
    ``tifffile.imread(path, aszarr=True)``); a path to a Zarr folder or to a TIFF (opened through tifffile's Zarr
    store, which reads the strips or tiles it needs).
    """
    import dask.array as da

    if type(source).__module__.startswith("dask"):
        yield source, None
        return
    store, axes = source, None
    if isinstance(source, str | os.PathLike):
        store, axes = _path_store(Path(source))
    try:
        node = _open_zarr(store)
        node, found = _full_resolution(node)
        yield da.from_zarr(node), axes or found
    finally:
        if store is not source and hasattr(store, "close"):
            store.close()


def _path_store(path: Path) -> tuple[Any, str | None]:
    """A Zarr folder's path, or a TIFF's tifffile Zarr store with its axes."""
    import tifffile

    if path.is_dir():
        return str(path), None
    if not files.require_regular(path):
        raise InputError(f"{path}: no such image file or Zarr folder")
    if path.suffix.lower() not in (".tif", ".tiff", ".btf", ".lsm"):
        raise InputError(f"{path}: read lazily only from a Zarr folder or a TIFF")
    try:
        with tifffile.TiffFile(path) as tif:
            axes = tif.series[0].axes
        return tifffile.imread(path, aszarr=True), axes.replace("I", "Z").replace("Q", "Z")
    except (OSError, ValueError, tifffile.TiffFileError) as error:
        raise InputError(f"{path}: not a readable TIFF ({error})") from None


def _open_zarr(store: Any) -> Any:
    import zarr

    if type(store).__module__.startswith("zarr.core"):
        return store
    try:
        return zarr.open(store, mode="r")
    except (OSError, ValueError, KeyError) as error:  # zarr's "not found" errors are FileNotFoundErrors
        raise InputError(f"{store}: not a Zarr store ({str(error).splitlines()[0]})") from None


def _full_resolution(node: Any) -> tuple[Any, str | None]:
    """A Zarr array, or the first (full-resolution) level of an OME-Zarr group, with the axes OME-Zarr records."""
    if not hasattr(node, "group_keys"):  # an array
        return node, None
    attrs = node.attrs.asdict()
    multiscales = attrs.get("ome", attrs).get("multiscales")
    if not multiscales:
        raise InputError(f"{node.store_path}: a Zarr group without OME-Zarr multiscales: give one of its arrays")
    first = multiscales[0]
    axes = [a["name"] if isinstance(a, dict) else a for a in first.get("axes", [])]
    letters = "".join(OME_AXES.get(str(a).lower(), "?") for a in axes)
    return node[first["datasets"][0]["path"]], letters if axes and "?" not in letters else None


@dataclass(frozen=True)
class Plane:
    """A 2D Dask array that slices into numpy, read in the calling thread (inside a Dask worker too)."""

    array: Any

    @property
    def shape(self) -> tuple[int, int]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.array[key].compute(scheduler="synchronous"))


@dataclass(frozen=True)
class View:
    """One plane of an N-D Zarr array, sliced in 2D."""

    array: Any
    index: tuple[int, ...]

    def __getitem__(self, key) -> np.ndarray:
        return self.array[self._key(key)]

    def __setitem__(self, key, value) -> None:
        self.array[self._key(key)] = value

    def _key(self, key) -> tuple:
        return (*self.index, *(key if isinstance(key, tuple) else (key,)))


def blocks(shape: tuple[int, int], block: int | None = None, context: int | None = None) -> list[Tile]:
    """Blocks of at most ``block`` px a side (default ``BLOCK``) in raster order, each seen with ``context`` around."""
    block, context = block or BLOCK, CONTEXT if context is None else context
    height, width = shape
    return [
        Tile(
            (slice(y, min(y + block, height)), slice(x, min(x + block, width))),
            (
                slice(max(0, y - context), min(y + block + context, height)),
                slice(max(0, x - context), min(x + block + context, width)),
            ),
        )
        for y in range(0, height, block)
        for x in range(0, width, block)
    ]


@dataclass
class Output:
    """The Zarr group being written: ``outlines``, ``labels`` (uint32), ``bonds`` and the scratch ``code``."""

    folder: Path
    group: Any

    def view(self, index: tuple[int, ...]) -> dict[str, View]:
        return {name: View(self.group[name], index) for name in ("outlines", "labels", "bonds", "code")}


@contextmanager
def writing(path: os.PathLike | None, shape: tuple[int, ...], rows: int, attrs: dict) -> Iterator[Output]:
    """A new Zarr group in a hidden folder beside ``path`` (a temporary folder if None), chunks ``rows`` high; renamed
    onto ``path`` when the block ends without error (never replacing anything), else removed."""
    import zarr

    if path is None:
        folder = Path(tempfile.mkdtemp(prefix="epyseg-ij-", suffix=".zarr"))
    else:
        path = Path(path)
        if os.path.lexists(path):
            raise InputError(f"{path} exists: give a new path for the Zarr output")
        files.make_folder(path.parent)
        folder = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        group = zarr.open_group(folder, mode="w-", attributes={"epyseg_ij": attrs})
        chunks = (*(1,) * (len(shape) - 2), rows, min(shape[-1], CHUNK_WIDTH))
        for name, dtype in (("outlines", "uint8"), ("labels", "uint32"), ("bonds", "float32"), ("code", "uint8")):
            group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
        yield Output(folder, group)
        shutil.rmtree(folder / "code")
        if path is not None:
            files.put_folder(folder, path)
    except OSError as error:
        raise files.file_error(error, path or folder) from None
    finally:
        if path is None or folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def open_output(path: os.PathLike) -> Any:
    """The Zarr group that ``writing`` put at ``path``, read-only."""
    import zarr

    return zarr.open_group(path, mode="r")


def bound_memory() -> None:
    """Have glibc return every freed array of ``MMAP_THRESHOLD`` or more to the system at once.

    By default glibc raises that threshold as large blocks are freed, after which arrays of up to 32 MiB are carved
    from per-thread arenas that keep what is freed: over the thousands of rows and blocks of a huge plane (numpy,
    Zarr's and the post-processing threads), resident memory then grows block after block (measured: +140 MB per
    block on a 4096² plane, flat with the fixed threshold). Process-wide; nothing where ``mallopt`` is missing.
    """
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    if hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def annotate(path: os.PathLike, **notes) -> None:
    """Add ``notes`` (JSON values) to the ``epyseg_ij`` attributes of the Zarr group at ``path``."""
    import zarr

    group = zarr.open_group(path, mode="r+")
    group.attrs["epyseg_ij"] = {**group.attrs.get("epyseg_ij", {}), **notes}


def make_root(folder: Path) -> None:
    """Make ``folder`` a Zarr group (if it is not one yet) marked as epyseg-ij's, to hold a group per image."""
    import zarr

    try:
        group = zarr.open_group(folder, mode="a")
        if "epyseg_ij" not in group.attrs:
            group.attrs["epyseg_ij"] = {"holds": "segmentations"}
    except (OSError, ValueError) as error:  # e.g. zarr's ContainsArrayError
        raise InputError(f"{folder} cannot hold Zarr groups: {str(error).splitlines()[0]}") from None


def is_result(folder: Path) -> bool:
    """Whether a Zarr folder is epyseg-ij's output (a segmentation, or a folder of them), not an image."""
    try:
        return "epyseg_ij" in json.loads(files.read_bytes(folder / "zarr.json", 1 << 20)).get("attributes", {})
    except (InputError, ValueError, AttributeError):
        return False


def number_cells(outlines: View, labels: View, shape: tuple[int, int]) -> int:
    """Number the cells (4-connected regions of 0) of a plane's outlines into ``labels``, block by block.

    Each block is labelled on its own; regions that touch across a block seam are joined (a graph of the touching
    pairs); the cells are numbered 1..n in raster order of their first pixel, as ``postprocess.labels_from_outlines``
    numbers a plane in memory. Returns n.
    """
    width = shape[1]
    grid = blocks(shape, context=0)
    bases, firsts, pairs = [], [], []
    above = np.zeros(width, np.int64)  # provisional numbers of the row above the current row of blocks
    left = above  # and of the column left of the current block
    total = 0
    for tile in grid:
        rows, cols = tile.own
        local, n = _label(outlines, tile)
        numbers = np.where(local > 0, local.astype(np.int64) + total, 0)
        bases.append(total)
        firsts.append(_first_pixels(local, rows.start, cols.start, width))
        if rows.start:
            pairs.append(_touching(above[cols], numbers[0]))
        if cols.start:
            pairs.append(_touching(left, numbers[:, 0]))
        left = numbers[:, -1]
        above[cols] = numbers[-1]
        total += n
    if total == 0:
        for tile in grid:
            labels[tile.own] = 0
        return 0
    table = _raster_numbers(total, np.concatenate(firsts), np.concatenate([np.zeros((0, 2), np.int64), *pairs]))
    for tile, base in zip(grid, bases, strict=True):
        local, _ = _label(outlines, tile)
        labels[tile.own] = np.where(local > 0, table[local + base], 0).astype(np.uint32)
    return int(table.max())


def _label(outlines: View, tile: Tile) -> tuple[np.ndarray, int]:
    from .postprocess import FOUR

    return ndi.label(np.asarray(outlines[tile.own]) == 0, FOUR)


def _first_pixels(local: np.ndarray, y: int, x: int, width: int) -> np.ndarray:
    """Plane-wide raster index of each region's first pixel; ``ndi.label`` numbers regions as it first meets them."""
    flat = local.ravel()
    first = np.flatnonzero(np.diff(np.maximum.accumulate(flat), prepend=0) > 0)
    return (y + first // local.shape[1]) * width + x + first % local.shape[1]


def _touching(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both = (a > 0) & (b > 0)
    return np.unique(np.stack([a[both], b[both]], axis=1), axis=0)


def _raster_numbers(total: int, firsts: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Table from provisional region numbers (1..total) to cell numbers: joined regions are one cell, numbered in
    raster order of the cell's first pixel."""
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0] - 1, pairs[:, 1] - 1)), shape=(total, total))
    n, cell = connected_components(graph, directed=False)
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, cell, firsts)
    rank = np.empty(n, np.int64)
    rank[np.argsort(first)] = np.arange(1, n + 1)
    return np.concatenate([[0], rank[cell]])
