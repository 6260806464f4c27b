"""bioimage.io packages: bioimageio.core's own test-model check on an exported package, export/import round trip,
one-line refusals. The validator runs in a subprocess with Keras 3 (as a bioimageio.core user has it), not tf-keras."""

import dataclasses
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import SAMPLE

from epyseg_ij import bioimage_io, cli, models
from epyseg_ij.errors import InputError, ModelError

FORMATS = ("keras_hdf5", "tensorflow_saved_model_bundle", "onnx")

VALIDATE = """
import json, sys
from bioimageio.core import test_model
summary = test_model(sys.argv[1])
details = [{"name": d.name, "status": d.status, "errors": [e.msg[:300] for e in d.errors]} for d in summary.details]
open(sys.argv[2], "w").write(json.dumps({"status": summary.status, "details": details}))
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory, local_model):
    """The tiny real network (percentile normalisation) exported with every weight format, from the EpiTools frame."""
    model = models.Model(local_model.keras, dataclasses.replace(local_model.card, normalization="percentile"), None)
    out = tmp_path_factory.mktemp("package") / "tiny.zip"
    return bioimage_io.export_package(model, out, sample=SAMPLE, authors=["Test Author"], onnx=True)


def test_bioimageio_core_reproduces_the_test_outputs_in_every_weight_format(package, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "SM_FRAMEWORK")}
    env.update(BIOIMAGEIO_CACHE_PATH=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="2")
    report = tmp_path / "summary.json"
    run = subprocess.run(
        [sys.executable, "-c", VALIDATE, str(package), str(report)], cwd=tmp_path, env=env, capture_output=True
    )
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    summary = json.loads(report.read_text())
    failed = [d for d in summary["details"] if d["status"] == "failed"]
    assert summary["status"] == "passed" and not failed, failed
    passed = {d["name"] for d in summary["details"] if d["status"] == "passed"}
    for weights in FORMATS:
        assert f"Reproduce test outputs from test inputs ({weights})" in passed


def test_the_rdf_states_card_normalisation_citation_and_files(package):
    from bioimageio.spec import load_description

    with zipfile.ZipFile(package) as z:
        names = set(z.namelist())
        descr = load_description(z)
    assert {
        "rdf.yaml",
        "model.h5",
        "saved_model.zip",
        "model.onnx",
        "cover.png",
        "README.md",
        "sample_input.tif",
    } <= names
    assert descr.format_version.startswith("0.5.") and str(descr.license) == "BSD-3-Clause"
    assert [str(c.doi) for c in descr.cite] == ["10.1242/dev.194589"]
    steps = [s for s in descr.inputs[0].preprocessing if s.id != "ensure_dtype"]  # added by bioimageio.spec
    assert [s.id for s in steps] == ["scale_range", "clip"]
    assert (steps[0].kwargs.min_percentile, steps[0].kwargs.max_percentile) == (2.0, 99.8)
    assert [str(a.id) for a in descr.inputs[0].axes] == ["batch", "y", "x", "channel"]
    assert descr.outputs[0].axes[1].halo == 16  # half the card's overlap (32)
    assert descr.config.model_extra["epyseg_ij"]["normalization"] == "percentile"
    with zipfile.ZipFile(package) as z:
        test_input = np.load(z.open("test_input.npy"))
    assert test_input.shape == (1, 192, 192, 1)  # the 199 x 206 frame, cropped to a multiple of 32


def test_export_then_import_round_trip(tmp_path, capsys):
    from epyseg_ij._tf import tf

    tf().keras.utils.set_random_seed(3)
    network = models.build_linknet("resnet18", 7)
    card = models.ModelCard("r18", encoder="resnet18", tile=128, overlap=16, provenance=models.stamp(source="tests"))
    out = bioimage_io.export_package(models.Model(network, card, None), tmp_path / "r18.zip", onnx=False)
    assert [p.name for p in tmp_path.iterdir()] == ["r18.zip"]  # atomic: no temporary file left
    assert cli.main(["models", "import", str(out), "--name", "r18-back"]) == 0
    assert capsys.readouterr().out.strip() == str(models.user_model_path("r18-back"))
    back = models.load("r18-back")
    assert dataclasses.replace(back.card, name="r18", provenance={}) == dataclasses.replace(card, provenance={})
    assert back.card.provenance["source"] == "tests" and back.card.provenance["imported_from"] == str(out)
    batch = np.random.default_rng(0).random((1, 64, 64, 1), np.float32)
    np.testing.assert_array_equal(back.predict_batch(batch), models.Model(network, card, None).predict_batch(batch))


def test_refusals_are_one_line(package, tmp_path, capsys):
    before = package.read_bytes()
    assert cli.main(["models", "export", "default", str(package), "--format", "bioimageio"]) == 2
    assert (
        capsys.readouterr().err.strip() == f"epyseg-ij: error: {package} exists: kept (use --overwrite to replace it)"
    )
    assert package.read_bytes() == before
    for call, match in (
        (lambda: bioimage_io.export_package("default", tmp_path / "x.tar"), "is a .zip file"),
        (lambda: bioimage_io.export_package("classical", tmp_path / "c.zip"), "no network to export"),
        (lambda: bioimage_io.export_package("default", tmp_path / "s.zip", sample=np.zeros((40, 40))), "64 x 64"),
        (lambda: bioimage_io.export_package("default", tmp_path / "s.zip", sample=np.zeros((2, 99, 99))), "stack"),
    ):
        with pytest.raises(InputError, match=match):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_import_refuses_invalid_packages(package, tmp_path):
    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as z:
        z.writestr("notes.txt", "no rdf here")
    with pytest.raises(ModelError, match="junk.zip: not a usable bioimage.io package .No rdf.yaml found"):
        models.import_model(junk, "junk")
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(edited, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(
                item,
                data.replace(b"min_percentile: 2.0", b"min_percentile: 5.0") if item.filename == "rdf.yaml" else data,
            )
    with pytest.raises(ModelError, match="scale_range \\+ clip has no epyseg-ij normalisation"):
        models.import_model(edited, "edited")
    assert not models.user_model_path("junk").exists() and not models.user_model_path("edited").exists()
