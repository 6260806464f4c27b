"""The Appose worker, with appose-python as the host (as a Fiji plug-in built on appose-java would be).

The worker is a real subprocess of this environment (``python -m epyseg_ij.worker``, and Appose's own Python worker
for the task scripts); images cross as shared-memory NDArrays; the model is the tiny real Linknet of the ImageJ tests.
"""

import sys
import tomllib
from pathlib import Path

import ij_fixtures
import numpy as np
import pytest

import epyseg_ij
from epyseg_ij import models, worker
from epyseg_ij.synth import STYLES, synth_epithelium, write_dataset

appose = pytest.importorskip("appose")
tiny_model = ij_fixtures.tiny_model
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def environment():
    return appose.custom().wrap(sys.prefix)  # this venv, as Appose finds an environment it did not build


@pytest.fixture(scope="module")
def service(environment):
    with environment.python("-m", "epyseg_ij.worker") as service:
        yield service


def shared(array: np.ndarray):
    nd = appose.NDArray(str(array.dtype), list(array.shape))
    nd.ndarray()[...] = array
    return nd


def take(nd) -> np.ndarray:
    """A copy of an NDArray made by the worker, whose memory the host then frees."""
    array = nd.ndarray().copy()
    nd.shm.unlink()
    nd.shm.close()
    return array


def run(service, command: str, inputs: dict, on_update=None):
    task = service.task(worker.SCRIPTS[command], inputs)
    updates = []

    def listen(event):
        if event.response_type.name == "UPDATE":
            updates.append((event.message, event.current, event.maximum))
            if on_update:
                on_update(task)

    task.listen(listen)
    try:
        task.wait_for()
    except appose.TaskException:
        pass
    return task, updates


def test_segment_then_measure_through_shared_memory(service, environment, tiny_model):
    image = synth_epithelium((96, 128), seed=5, style=STYLES["clean"]).image
    path = str(models.user_model_path(tiny_model))  # a model file
    with shared(image) as nd:
        task, updates = run(service, "segment", {"image": nd, "model": path, "tile": 64, "outputs": ["labels"]})
    assert task.status.name == "COMPLETE", task.error
    labels = take(task.outputs["labels"])
    expected = epyseg_ij.segment(image, path, tile=64).labels
    np.testing.assert_array_equal(labels, expected)
    assert task.outputs["cells"] == int(expected.max()) and task.outputs["axes"] == "YX"
    assert updates and updates[-1][1] == updates[-1][2] and "tiles" in updates[-1][0]

    with environment.python().init("import numpy") as plain, shared(labels) as nd:  # Appose's own worker
        task, _ = run(plain, "measure", {"labels": nd, "spacing": [0.5, 0.5]})
    assert task.status.name == "COMPLETE", task.error
    table = task.outputs["table"]
    assert table["Label"] == sorted(set(np.unique(labels).tolist()) - {0})
    assert sum(table["Pixels"]) == int((labels > 0).sum()) and table["Area"][0] == table["Pixels"][0] * 0.25


def test_bad_input_fails_the_task_with_one_line(service):
    with shared(np.zeros((32, 32), np.uint8)) as nd:
        task, _ = run(service, "segment", {"image": nd, "model": "classical", "tta": "sideways"})
    assert task.status.name == "FAILED" and task.error.startswith("InputError: tta must be one of")
    assert "\n" not in task.error
    task, _ = run(service, "segment", {"model": "classical"})
    assert task.status.name == "FAILED" and task.error == "InputError: segment: missing input image"


def test_train_reports_each_step(service, tmp_path):
    """Also the training test of paths with spaces and non-ASCII characters (data folder, model name)."""
    data = tmp_path / "données é"
    write_dataset(data, 2, (96, 96), seed=3)
    inputs = {"data": str(data), "name": "modèle appose", "encoder": "resnet18", "epochs": 1, "steps_per_epoch": 2}
    task, updates = run(service, "train", {**inputs, "tile": 64, "batch": 2, "val_fraction": 0})
    assert task.status.name == "COMPLETE", task.error
    assert Path(task.outputs["path"]) == models.user_model_path("modèle appose") and task.outputs["best_epoch"] == 1
    assert [u[1:] for u in updates] == [(1, 2), (2, 2)] and len(task.outputs["history"]) == 1


def test_cancel_stops_at_the_next_progress_report(service, tiny_model):
    image = synth_epithelium((256, 256), seed=6).image
    inputs = {"model": str(models.user_model_path(tiny_model)), "tile": 32, "overlap": 0, "batch": 1}
    with shared(image) as nd:
        task, updates = run(service, "segment", {"image": nd, **inputs}, on_update=lambda t: t.cancel())
    assert task.status.name == "CANCELED" and 1 <= len(updates) < updates[0][2]


def test_pixi_manifest_builds_what_the_package_pins():
    """The environment an Appose Fiji plug-in builds (pixi.toml, also in the plug-in jar) pins what pyproject does."""
    text = (REPO / "epyseg_ij" / "java" / "pixi.toml").read_text()
    from appose.scheme import from_content

    assert from_content(text).name() == "pixi.toml"
    pixi = tomllib.loads(text)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(
        p.split("==") for p in project["optional-dependencies"]["gpu"] + project["optional-dependencies"]["appose"]
    )
    assert pixi["dependencies"]["python"] == "3.11.*"
    pypi = pixi["pypi-dependencies"]
    assert pypi["epyseg-ij"] == f"=={project['version']}" and pypi["appose"] == f"=={pins['appose']}"
    assert pypi["tf-keras"] == f"=={pins['tf-keras']}"
    assert pixi["feature"]["cpu"]["pypi-dependencies"]["tensorflow"] == f"=={pins['tensorflow[and-cuda]']}"
    cuda = pixi["feature"]["cuda"]["pypi-dependencies"]["tensorflow"]
    assert cuda == {"version": f"=={pins['tensorflow[and-cuda]']}", "extras": ["and-cuda"]}
    assert pixi["environments"] == {"default": ["cpu"], "cuda": ["cuda"]}
