"""Fixtures shared by the ImageJ bridge tests: a tiny real model, synthetic epithelium images, an Xvfb display."""

import os
import shutil
import subprocess

import pytest

from epyseg_ij import io
from epyseg_ij.synth import STYLES, synth_epithelium

TINY = "ij-tiny"


@pytest.fixture(scope="session")
def tiny_model(private_home):
    from epyseg_ij import models
    from epyseg_ij._tf import tf

    tf().keras.utils.set_random_seed(0)
    network = models.build_linknet("mobilenetv2", 7)
    card = models.ModelCard(TINY, encoder="mobilenetv2", tile=128, overlap=16, provenance=models.stamp(source="tests"))
    models.save_model(network, models.user_model_path(TINY), card, dtype="float16")
    return TINY


@pytest.fixture(scope="session")
def samples(tmp_path_factory):
    """Synthetic epithelia as ImageJ TIFFs; ``calibrated`` has 0.5 µm pixels."""
    folder = tmp_path_factory.mktemp("ij_samples")
    paths = {}
    for i in range(4):
        sample = synth_epithelium((160, 192), seed=10 + i, style=STYLES["clean"])
        paths[f"s{i}"] = io.write_tiff(folder / f"s{i}.tif", sample.image)
    sample = synth_epithelium((160, 192), seed=3, style=STYLES["clean"])
    paths["calibrated"] = io.write_tiff(folder / "calibrated.tif", sample.image, spacing=(0.5, 0.5), unit="micron")
    return paths


def cell_count_macro(folder, model: str):
    """A macro file that segments the image named by its argument and prints "cells: N"."""
    path = folder / "good.ijm"
    path.write_text(f"""
        setBatchMode(true);
        open(getArgument());
        run("EPySeg Segment", "model={model} output=[labels results]");
        print("cells: " + nResults);
    """)
    return path


@pytest.fixture(scope="module")
def display():
    """A private Xvfb server; its display name."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=[write],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        server.kill()
        pytest.fail("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(10)
