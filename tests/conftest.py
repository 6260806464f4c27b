"""Shared fixtures: a private model cache, tiny real networks, the licensed sample data."""

import http.server
import os
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
EPITOOLS = SHARED_DATA / "epitools_wingdisc" / "derived"
SAMPLE = REPO / "samples" / "wingdisc_frame00.tif"


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory):
    """Models, downloads and caches of the test session go to a fresh folder, never the user's cache."""
    home = tmp_path_factory.mktemp("epyseg_home")
    os.environ["EPYSEG_IJ_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real HTTP server on localhost serving a folder: (folder, URL)."""
    root = tmp_path_factory.mktemp("www")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=root)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="session")
def vgg16_path(private_home):
    """The EPySeg architecture (Linknet-vgg16, 7 sigmoid outputs), randomly initialised, saved with a card."""
    from epyseg_ij import models
    from epyseg_ij._tf import tf

    tf().keras.utils.set_random_seed(0)
    network = models.build_linknet("vgg16", 7)
    card = models.ModelCard("random-vgg16", provenance=models.stamp(source="tests"))
    return models.save_model(network, private_home / "random-vgg16.h5", card)


@pytest.fixture(scope="session")
def local_model():
    """A small real Keras network with fixed weights: smooth, then bright = bond, dark = cell (7 EPySeg channels).

    Its receptive field (5 px) is smaller than the tile margins used in the tests, and its outputs are meaningful.
    """
    from epyseg_ij import models
    from epyseg_ij._tf import tf

    keras = tf().keras
    inputs = keras.Input((None, None, 1))
    smooth = keras.layers.Conv2D(1, 3, padding="same", use_bias=False)(inputs)
    outputs = keras.layers.Conv2D(7, 3, padding="same", activation="sigmoid")(smooth)
    network = keras.Model(inputs, outputs)
    blur = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    sign = np.array([1, 1, 1, -1, -1, -1, 1], np.float32)  # channels 0-2 and 6 are bond-like, 3-5 cell-like
    kernel = np.zeros((3, 3, 1, 7), np.float32)
    kernel[1, 1, 0] = 20 * sign
    network.set_weights([blur[..., None, None], kernel, -20 * 0.3 * sign])
    return models.Model(network, models.ModelCard("local", encoder="none"), None)


def needs_data(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data not found at {path}")
    return path


def assert_ta_topology(outlines: np.ndarray, labels: np.ndarray) -> None:
    """Tissue Analyzer convention: 0/255, lines 1 px wide, cells = 4-connected 0-regions numbered by `labels`."""
    from epyseg_ij.postprocess import labels_from_outlines

    assert outlines.dtype == np.uint8 and set(np.unique(outlines)) <= {0, 255}
    np.testing.assert_array_equal(labels, labels_from_outlines(outlines))
    boundary = outlines > 0
    padded = np.pad(np.where(boundary, -1, labels.astype(np.int64)), 1, constant_values=-1)
    ys, xs = np.nonzero(boundary)
    around = np.stack([padded[ys + 1 + dy, xs + 1 + dx] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))])
    known = around >= 0
    distinct = [len(set(a[k])) for a, k in zip(around.T, known.T, strict=True)]
    redundant = [d == 1 for d in distinct]
    assert not any(redundant), f"{sum(redundant)} boundary pixels separate nothing (lines thicker than 1 px)"
