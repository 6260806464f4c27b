"""The OpenVINO backend against TensorFlow on the shipped network: same maps and outlines, a cache converted once,
and one-line errors for a backend that is unknown or not installed."""

import logging
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


def fresh(model: models.Model) -> models.Model:
    """The model as a new process loads it from its file (nothing converted in memory yet)."""
    network = models.build_linknet(model.card.encoder, model.card.n_outputs)
    models.load_weights(network, model.path)
    return models.Model(network, model.card, model.path)


def test_openvino_gives_tensorflows_maps_and_outlines(default):
    batch = np.random.default_rng(0).random((3, 96, 160, 1)).astype(np.float32)
    maps = backends.predictor(default, "openvino")(batch)
    np.testing.assert_allclose(maps, backends.predictor(default, "tensorflow")(batch), rtol=0, atol=1e-4)
    images = [tifffile.imread(SAMPLE)]
    if EPITOOLS.exists():
        images.append(tifffile.imread(EPITOOLS / "images" / "frame_03.tif"))
    for image in images:
        tf_result, ov_result = (epyseg_ij.segment(image, default, backend=b) for b in ("tensorflow", "openvino"))
        np.testing.assert_allclose(ov_result.bonds, tf_result.bonds, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(ov_result.outlines, tf_result.outlines)
        assert ov_result.n_cells == tf_result.n_cells and ov_result.n_cells[0] > 50


def test_a_second_start_imports_the_cache_and_a_bad_cache_is_replaced(default, caplog):
    backends.predictor(default, "openvino")  # converted and cached (by the test above, or now)
    cache = backends.cache_path(default.path)
    before = cache.stat()
    caplog.set_level(logging.INFO, "epyseg_ij.backends")
    batch = np.random.default_rng(1).random((1, 64, 64, 1)).astype(np.float32)
    expected = backends.predictor(default, "openvino")(batch)
    np.testing.assert_array_equal(backends.predictor(fresh(default), "openvino")(batch), expected)
    assert (cache.stat().st_mtime_ns, cache.stat().st_ino) == (before.st_mtime_ns, before.st_ino)  # not rewritten
    assert [r.getMessage().split()[0] for r in caplog.records] == ["imported"]  # not converted

    cache.write_bytes(b"not a compiled model")  # e.g. a copy from another OpenVINO build
    caplog.clear()
    np.testing.assert_array_equal(backends.predictor(fresh(default), "openvino")(batch), expected)
    assert any("cannot use the cached OpenVINO model" in r.getMessage() for r in caplog.records)
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
