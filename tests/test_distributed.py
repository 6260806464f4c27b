"""Batches on a real Dask cluster of 2 local worker processes: the results and rules of a serial batch.

The network runs on TensorFlow here (no OpenVINO conversion to wait for); the default backend gives the same.
"""

import numpy as np
import pytest
import tifffile
import zarr
from conftest import SAMPLE

from epyseg_ij import batch, cli, cluster, io, models
from epyseg_ij.errors import InputError, ModelError


@pytest.fixture(scope="module")
def dask():
    with cluster.client(workers=2) as client:
        yield client


@pytest.fixture
def images(tmp_path):
    frame = tifffile.imread(SAMPLE)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        tifffile.imwrite(folder / f"img{i}.tif", np.roll(frame, 50 * i, axis=1), imagej=True)
    (folder / "broken.tif").write_bytes(b"not a TIFF")
    return folder


def segment(paths, **options):
    lines = []
    reports = batch.segment_files(paths, on_file=lines.append, **options)
    assert sorted(map(str, lines)) == sorted(map(str, reports))  # one summary per image, as it finishes
    return reports


def test_two_workers_write_what_a_serial_batch_writes(dask, images, tmp_path):
    paths = batch.find_images([images])
    serial = segment(paths, ta=False, out_dir=tmp_path / "serial", backend="tensorflow")
    remote = segment(paths, ta=False, out_dir=tmp_path / "remote", client=dask, backend="tensorflow")
    assert [r.path for r in remote] == paths  # in input order
    assert [r.status for r in remote] == [r.status for r in serial] == ["failed", "written", "written", "written"]
    assert "not a readable image" in remote[0].message  # a failed image does not stop the others
    assert [r.n_cells for r in remote] == [r.n_cells for r in serial]
    for name in sorted(p.name for p in (tmp_path / "serial").iterdir()):
        np.testing.assert_array_equal(
            tifffile.imread(tmp_path / "remote" / name), tifffile.imread(tmp_path / "serial" / name)
        )
    (tmp_path / "remote" / "img1_labels.tif").unlink()  # as after a run killed meanwhile
    again = segment(paths, ta=False, out_dir=tmp_path / "remote", client=dask, backend="tensorflow")
    assert [r.status for r in again] == ["failed", "skipped", "written", "skipped"]
    assert again[2].outputs == [tmp_path / "remote" / "img1_labels.tif"]
    loads = dask.run(lambda: models._load_cached.cache_info().misses)  # model files each worker has read
    assert set(loads.values()) <= {0, 1} and sum(loads.values()) >= 1


def test_workers_never_replace_a_hand_correction(dask, images):
    paths = [images / "img0.tif", images / "img1.tif"]
    segment(paths, model="classical", client=dask)
    corrected = io.ta_mask_path(paths[1])
    mask = tifffile.imread(corrected)
    mask[10, :] = 255  # a person draws a line
    tifffile.imwrite(corrected, mask, imagej=True)
    hand = corrected.read_bytes()
    reports = segment(paths, model="classical", client=dask, overwrite=True, invert=True)
    assert [r.status for r in reports] == ["written", "skipped"] and "corrected by hand" in reports[1].message
    assert corrected.read_bytes() == hand and len(list((images / "img0").glob("handCorrection.*-*.tif"))) == 1


def test_cli_on_an_existing_scheduler_writes_zarr_groups(dask, images, capsys):
    out = images / "cells.zarr"
    command = ["segment", str(images), "--out", str(out), "--scheduler", dask.scheduler.address, "--tile", "64"]
    command += ["--backend", "tensorflow"]
    status = cli.main(command)
    lines = capsys.readouterr().out.splitlines()
    assert status == 1 and lines[-1] == "3 segmented, 0 skipped, 1 failed"
    assert len([line for line in lines if line.startswith(str(images))]) == 4  # one line per image
    assert cli.main(command) == 1  # the results in the input folder are not taken for an image
    assert capsys.readouterr().out.splitlines()[-1] == "0 segmented, 3 skipped, 1 failed"
    in_memory = batch.segment(tifffile.imread(images / "img2.tif"), tile=64)
    group = zarr.open_group(out / "img2", mode="r")
    np.testing.assert_array_equal(group["labels"][...], in_memory.labels)
    assert group.attrs["epyseg_ij"]["image"] == "img2.tif" and sorted(group.array_keys()) == [
        "bonds",
        "labels",
        "outlines",
    ]


def test_models_workers_cannot_open_are_refused_before_any_job(dask, images, local_model):
    with pytest.raises(InputError, match="only in this process"):
        batch.segment_files([images / "img0.tif"], model=local_model, client=dask)
    with pytest.raises(ModelError, match="unknown model"):
        batch.segment_files([images / "img0.tif"], model="no-such-model", client=dask)
    with pytest.raises(InputError, match="progress"):
        batch.segment_files([images / "img0.tif"], client=dask, progress=print)
    assert not (images / "img0").exists()


def test_an_unreachable_scheduler_is_one_line(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with cluster.client(scheduler="tcp://127.0.0.1:9"):
            pass
