"""Fixtures shared by the ImageJ bridge tests: a tiny real model and synthetic epithelium images."""

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
