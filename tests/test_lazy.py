"""Huge images, lazily: Dask, Zarr, OME-Zarr and TIFF sources, Zarr output, cells numbered across block seams."""

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from conftest import SAMPLE, assert_ta_topology

import epyseg_ij
from epyseg_ij import lazy, postprocess
from epyseg_ij.errors import Cancelled, InputError


@pytest.fixture(scope="module")
def frame():
    return tifffile.imread(SAMPLE)


def test_cells_cut_by_block_seams_keep_one_label_as_in_memory(frame, monkeypatch):
    monkeypatch.setattr(lazy, "BLOCK", 64)  # 4 x 4 blocks, each seeing 32 px around it
    monkeypatch.setattr(lazy, "CONTEXT", 32)
    options = {"tile": 64, "min_size": 15, "backend": "tensorflow"}
    memory = epyseg_ij.segment(frame, **options)
    lazy_result = epyseg_ij.segment(da.from_array(frame, chunks=(50, 60)), **options)
    np.testing.assert_array_equal(lazy_result.labels, memory.labels)
    np.testing.assert_array_equal(lazy_result.outlines, memory.outlines)
    np.testing.assert_array_equal(lazy_result.bonds, memory.bonds)
    assert lazy_result.n_cells == memory.n_cells and lazy_result.labels.dtype == memory.labels.dtype
    labels = lazy_result.labels
    across = {
        int(a) for seam in (64, 128) for a, b in zip(labels[:, seam - 1], labels[:, seam], strict=True) if a and a == b
    }
    assert len(across) > 5  # the test has cells that cross seams
    assert_ta_topology(lazy_result.outlines, labels)


def test_zarr_ome_zarr_and_tiff_sources_read_lazily(frame, tmp_path, local_model):
    memory = epyseg_ij.segment(frame, local_model)
    plain = zarr.create_array(tmp_path / "plain.zarr", data=frame, chunks=(64, 64))
    ome = zarr.open_group(tmp_path / "ome.zarr", mode="w")
    ome.create_array("0", data=frame[np.newaxis], chunks=(1, 64, 64))
    ome.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c"}, {"name": "y"}, {"name": "x"}],
                                 "datasets": [{"path": "0"}]}]  # fmt: skip
    tifffile.imwrite(tmp_path / "tiled.tif", frame, tile=(64, 64), compression="zlib")
    sources = [plain, tmp_path / "plain.zarr", tmp_path / "ome.zarr", ome, str(tmp_path / "tiled.tif")]
    for source in sources:
        result = epyseg_ij.segment(source, local_model)
        assert result.axes == "YX", source
        np.testing.assert_array_equal(result.labels, memory.labels)
    with tifffile.TiffFile(tmp_path / "tiled.tif") as tif:
        np.testing.assert_array_equal(epyseg_ij.segment(tif.aszarr(), local_model).labels, memory.labels)


def test_zarr_output_is_complete_or_absent(frame, tmp_path, local_model):
    stack = np.stack([frame, frame[::-1]])
    out = tmp_path / "cells.zarr"
    result = epyseg_ij.segment(da.from_array(stack, chunks=(1, 100, 100)), local_model, axes="TYX", out=out)
    assert (
        isinstance(result.labels, zarr.Array)
        and result.labels.dtype == np.uint32
        and result.labels.shape == stack.shape
    )
    for plane, expected in zip(stack, (result.labels[0], result.labels[1]), strict=True):
        np.testing.assert_array_equal(expected, epyseg_ij.segment(plane, local_model).labels)
    group = zarr.open_group(out, mode="r")
    assert sorted(group.array_keys()) == ["bonds", "labels", "outlines"]
    assert group.attrs["epyseg_ij"]["n_cells"] == result.n_cells and group.attrs["epyseg_ij"]["axes"] == "TYX"
    with pytest.raises(InputError, match="exists"):
        epyseg_ij.segment(frame, local_model, out=out)

    def cancel(done, total):
        if done > 1:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        epyseg_ij.segment(frame, local_model, tile=64, out=tmp_path / "cancelled.zarr", progress=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.zarr"]


def test_sources_that_cannot_be_read_are_one_line(tmp_path, local_model):
    zarr.open_group(tmp_path / "group.zarr", mode="w").create_array("a", shape=(8, 8), dtype="uint8")
    (tmp_path / "image.png").write_bytes(b"png")
    (tmp_path / "empty").mkdir()
    for source, message in [
        (tmp_path / "group.zarr", "without OME-Zarr multiscales"),
        (tmp_path / "image.png", "only from a Zarr folder or a TIFF"),
        (tmp_path / "empty", "not a Zarr store"),
        (tmp_path / "missing.zarr", "no such image file"),
    ]:
        with pytest.raises(InputError, match=message):
            epyseg_ij.segment(source, local_model)


@pytest.mark.parametrize("block", [7, 16, 33, 200])
def test_cells_are_numbered_across_blocks_as_in_memory(block, monkeypatch):
    rng = np.random.default_rng(block)
    outlines = np.zeros((120, 150), np.uint8)
    outlines[rng.random(outlines.shape) < 0.35] = 255  # many regions, some winding across several blocks
    outlines[20:100, 40] = outlines[20, 40:120] = outlines[20:100, 120] = 255  # a U that meets itself late
    outlines[21:99, 41:120] = 0
    monkeypatch.setattr(lazy, "BLOCK", block)
    labels = np.zeros(outlines.shape, np.uint32)
    n = lazy.number_cells(outlines, labels, outlines.shape)
    expected = postprocess.labels_from_outlines(outlines)
    np.testing.assert_array_equal(labels, expected)
    assert n == expected.max()
