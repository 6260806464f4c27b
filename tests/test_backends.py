"""The OpenVINO backend against TensorFlow on the shipped network: same maps and outlines, a cache converted once,
and one-line errors for a backend that is unknown or not installed."""

import logging
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from conftest import EPITOOLS, SAMPLE

import epyseg_ij
from epyseg_ij import InputError, backends, cli, models
from epyseg_ij.ij.commands import SEGMENT_OPTIONS
from epyseg_ij.ij.options import parse

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def default():
    return models.load("default")


def test_openvino_gives_tensorflows_maps_and_outlines(default):
    batch = np.random.default_rng(0).random((3, 96, 160, 1)).astype(np.float32)
    maps = backends.predictor(default, "openvino")(batch)
    np.testing.assert_allclose(maps, backends.predictor(default, "tensorflow")(batch), rtol=0, atol=1e-4)
    backends.release(default)  # its buffers are allocated again
    np.testing.assert_array_equal(backends.predictor(default, "openvino")(batch), maps)
    images = [tifffile.imread(SAMPLE)]
    if EPITOOLS.exists():
        images.append(tifffile.imread(EPITOOLS / "images" / "frame_03.tif"))
    for image in images:
        tf_result, ov_result = (epyseg_ij.segment(image, default, backend=b) for b in ("tensorflow", "openvino"))
        np.testing.assert_allclose(ov_result.bonds, tf_result.bonds, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(ov_result.outlines, tf_result.outlines)
        assert ov_result.n_cells == tf_result.n_cells and ov_result.n_cells[0] > 50


SECOND_START = """
import logging, sys, tifffile
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
import epyseg_ij
result = epyseg_ij.segment(tifffile.imread(sys.argv[1]), backend="openvino")
print("tensorflow imported:", "tensorflow" in sys.modules, result.n_cells[0])
"""


def test_a_second_start_imports_the_cache_without_tensorflow(default):
    backends.predictor(default, "openvino")  # converted and cached (by the test above, or now)
    cache = backends.cache_path(default.path)
    before = cache.stat()
    run = subprocess.run([sys.executable, "-c", SECOND_START, str(SAMPLE)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    log = [line for line in run.stdout.splitlines() if line.startswith("epyseg_ij.")]
    assert len(log) == 1 and log[0].startswith("epyseg_ij.backends: imported the OpenVINO model of default")
    expected = epyseg_ij.segment(tifffile.imread(SAMPLE), default, backend="tensorflow").n_cells[0]
    assert run.stdout.splitlines()[-1] == f"tensorflow imported: False {expected}"
    assert (cache.stat().st_mtime_ns, cache.stat().st_ino) == (before.st_mtime_ns, before.st_ino)  # not rewritten


def test_a_bad_cache_is_converted_again_and_replaced(local_model, tmp_path, caplog):
    path = models.save_model(local_model.keras, tmp_path / "local.h5", local_model.card)  # the file of this network
    batch = np.random.default_rng(1).random((1, 64, 64, 1)).astype(np.float32)
    expected = backends.predictor(models.Model(local_model.keras, local_model.card, path), "openvino")(batch)
    cache = backends.cache_path(path)
    cache.write_bytes(b"not a compiled model")  # e.g. a copy from another OpenVINO build
    with caplog.at_level(logging.WARNING, "epyseg_ij.backends"):
        again = backends.predictor(models.Model(local_model.keras, local_model.card, path), "openvino")(batch)
    np.testing.assert_array_equal(again, expected)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [f"cannot use the cached OpenVINO model {cache}"]
    assert cache.stat().st_size > 1000  # converted again and cached again


def test_an_unknown_backend_is_one_line_everywhere(capsys, local_model):
    with pytest.raises(InputError, match="backend must be one of 'auto', 'tensorflow', 'openvino', got 'cuda'"):
        epyseg_ij.segment(np.zeros((64, 64)), local_model, backend="cuda")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["segment", "image.tif", "--backend", "cuda"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "invalid choice: 'cuda'" in err
    with pytest.raises(InputError, match="backend='cuda' is not allowed"):
        parse("backend=cuda", SEGMENT_OPTIONS, "EPySeg Segment")
    assert parse("backend=openvino", SEGMENT_OPTIONS, "EPySeg Segment")["backend"] == "openvino"


def test_openvino_not_installed_is_a_clear_error_and_auto_falls_back(monkeypatch, capsys, local_model):
    monkeypatch.setitem(sys.modules, "openvino", None)  # what an environment without OpenVINO imports
    with pytest.raises(InputError, match="backend 'openvino' needs OpenVINO, which is not installed: pip install"):
        epyseg_ij.segment(np.zeros((64, 64)), local_model, backend="openvino")
    assert cli.main(["segment", "image.tif", "--backend", "openvino"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("epyseg-ij: error: backend 'openvino' needs OpenVINO") and err.count("\n") == 1
    assert backends.choose("auto") == "tensorflow"
    assert epyseg_ij.segment(np.zeros((64, 64)), local_model).n_cells == [0]  # auto runs on TensorFlow
