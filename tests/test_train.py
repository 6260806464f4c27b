"""Training with real (tiny) networks on synthetic data: loss, checkpoints, resume, fine-tuning, bad input."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from conftest import REPO

from epyseg_ij import models
from epyseg_ij.batch import segment_files
from epyseg_ij.errors import Cancelled, InputError
from epyseg_ij.synth import synth_epithelium, write_dataset
from epyseg_ij.training import run_dir, train

# resnet18 is the fastest encoder to train on two CPU cores (about 0.1 s per step of 4 tiles of 64 px).
TINY = dict(encoder="resnet18", tile=64, batch=4, steps_per_epoch=20, val_fraction=0.25)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train") / "data"
    write_dataset(folder, 4, (128, 128), seed=11)
    return folder


@pytest.fixture(scope="module")
def trained(data_dir):
    """8 epochs of 20 steps, cancelled in the middle of epoch 4, then resumed to the end."""
    from epyseg_ij._tf import tf

    tf().keras.utils.set_random_seed(0)
    cancel = threading.Event()
    first, steps = [], []

    def on_step(done: int, total: int) -> None:
        steps.append((done, total))
        if done == 3 * 20 + 5:  # in the middle of epoch 4
            cancel.set()

    with pytest.raises(Cancelled, match="resume"):
        train([data_dir], "tiny", epochs=8, on_epoch=first.append, on_step=on_step, cancel=cancel, **TINY)
    run = run_dir("tiny")
    after_cancel = SimpleNamespace(
        state=json.loads((run / "state.json").read_text()), files=sorted(p.name for p in run.iterdir())
    )
    resumed = []
    result = train([data_dir], "tiny", epochs=8, resume=True, on_epoch=resumed.append)
    return SimpleNamespace(first=first, steps=steps, after_cancel=after_cancel, resumed=resumed, result=result)


def test_cancel_keeps_the_last_complete_epoch(trained):
    assert [r.epoch for r in trained.first] == [1, 2, 3]
    assert trained.steps == [(k, 8 * 20) for k in range(1, 66)], "stopped right after the step that cancelled"
    assert trained.after_cancel.state["epoch"] == 3, "the incomplete 4th epoch is not saved"
    assert "last-0003" in trained.after_cancel.files and not any(".tmp" in f for f in trained.after_cancel.files)


def test_resume_continues_from_the_saved_epoch(trained):
    assert [r.epoch for r in trained.resumed] == [4, 5, 6, 7, 8]
    history = trained.result.history
    assert [r.epoch for r in history] == list(range(1, 9))
    assert history[:3] == trained.first
    # The resumed epoch starts from the saved weights, not from scratch: its loss continues the trend.
    assert history[3].loss < history[0].loss


def test_loss_goes_down(trained):
    losses = [r.loss for r in trained.result.history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert trained.result.history[-1].iou > trained.result.history[0].iou


def test_best_checkpoints_are_kept_and_load(trained):
    result = trained.result
    run = run_dir("tiny")
    state = json.loads((run / "state.json").read_text())
    assert state["finished"] and state["monitor"] == "val_loss"
    assert not list(run.glob("last-*")), "optimizer state is dropped once the model is saved"
    kept = sorted(run.glob("best/*.h5"))
    assert len(kept) == 5
    val = {r.epoch: r.val_loss for r in result.history}
    assert result.best_epoch == min(val, key=val.get)
    assert sorted(int(p.stem.split("-")[1]) for p in kept) == sorted(sorted(val, key=val.get)[:5])
    best = models.load(run / f"best/epoch-{result.best_epoch:04d}.h5")
    final = models.load("tiny")
    assert final.path == models.user_model_path("tiny") == result.path
    assert final.card.encoder == "resnet18" and final.card.outputs == "epyseg7"
    assert final.card.provenance["best_epoch"] == result.best_epoch
    for a, b in zip(best.keras.get_weights(), final.keras.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_trained_model_segments(trained):
    from epyseg_ij import segment

    sample = synth_epithelium((128, 128), seed=99)
    result = segment(sample.image, model="tiny")
    gt = sample.outlines > 0
    assert result.bonds[gt].mean() > 2 * result.bonds[~gt].mean()
    assert result.labels.max() >= 5, "cells are found"


def test_fine_tuning_from_a_saved_model(trained, data_dir):
    base_file = models.user_model_path("tiny")
    before = _digest(base_file)
    shared = models.load("tiny")
    weights = [w.copy() for w in shared.keras.get_weights()]
    # The encoder comes from the base model, whatever ``encoder`` says.
    result = train([data_dir], "tiny-ft", base="tiny", epochs=1, **{**TINY, "encoder": "vgg16", "steps_per_epoch": 10})
    assert result.card.encoder == "resnet18" and result.card.provenance["base"] == "tiny"
    assert result.card.provenance["replay"] == 0.25, "fine-tuning mixes in synthetic epithelia by default"
    # It starts where the base model ended, far below a network trained from scratch.
    assert result.history[0].loss < 0.8 * trained.result.history[0].loss
    assert _digest(base_file) == before, "the base model file is not touched"
    for a, b in zip(weights, shared.keras.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # nor the loaded copy that segment() shares
    assert models.load("tiny-ft").card.name == "tiny-ft"


def test_existing_name_needs_overwrite(trained, data_dir):
    with pytest.raises(InputError, match="a model named 'tiny' already exists"):
        train([data_dir], "tiny", epochs=1, **TINY)


def test_base_model_that_does_not_fit(data_dir, tmp_path):
    rgb = models.save_model(
        models.build_linknet("resnet18", 7, input_channels=3),
        tmp_path / "rgb.h5",
        models.ModelCard("rgb", "resnet18", input_channels=3),
    )
    with pytest.raises(InputError, match="takes 3 input channels"):
        train([data_dir], "from-rgb", base=rgb, epochs=1, **TINY)
    bonds = models.save_model(
        models.build_linknet("resnet18", 1), tmp_path / "bonds.h5", models.ModelCard("b", "resnet18", "bonds", 1)
    )
    with pytest.raises(InputError, match="needs EPySeg's 7 output channels"):
        train([data_dir], "from-bonds", base=bonds, epochs=1, **TINY)
    assert not models.user_model_path("from-rgb").exists()


def test_bad_data_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(InputError, match="no images in data folder"):
        train([tmp_path], "nothing", epochs=1, **TINY)
    assert not run_dir("nothing").exists()
    with pytest.raises(InputError, match="multiple of 32"):
        train([tmp_path], "nothing", epochs=1, **{**TINY, "tile": 50})
    with pytest.raises(InputError, match="nothing to resume"):
        train([tmp_path], "nothing", epochs=1, resume=True)


_FULL_DISK = """
import resource, signal, sys
from epyseg_ij.training import CheckpointError, train
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file over the limit fails with EFBIG instead of killing us
limit = 8 << 20  # 8 MB: far below one checkpoint
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    train([{data!r}], "full", epochs=2, resume=True)
except CheckpointError as error:
    print(error)
    sys.exit(3)
"""


def test_full_disk_while_saving_keeps_the_previous_checkpoint(data_dir):
    settings = {**TINY, "steps_per_epoch": 2, "val_fraction": 0}

    def ctrl_c_in_epoch_2(done, total):
        if done > total // 2:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(Cancelled, match="interrupted; continue with resume"):
        train([data_dir], "full", epochs=2, on_step=ctrl_c_in_epoch_2, **settings)
    run = run_dir("full")
    before = {p.relative_to(run).as_posix(): _digest(p) for p in run.rglob("*") if p.is_file()}
    assert "state.json" in before and "best/epoch-0001.h5" in before

    script = textwrap.dedent(_FULL_DISK).format(data=str(data_dir))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-3000:]
    assert "could not save the checkpoint of epoch 2" in done.stdout
    assert "the checkpoint of epoch 1 is intact" in done.stdout

    after = {p.relative_to(run).as_posix(): _digest(p) for p in run.rglob("*") if p.is_file()}
    assert after == before, "nothing changed, nothing half-written left behind"
    assert models.load(run / "best/epoch-0001.h5").card.encoder == "resnet18"

    # An interrupted run is not discarded by accident ...
    with pytest.raises(InputError, match="interrupted training run .* resume it, or overwrite"):
        train([data_dir], "full", epochs=2, **settings)
    # ... and resumes once there is space again, even over what a save killed half-way would leave.
    (run / "last-0002").mkdir()
    (run / "last-0002" / "ckpt.index").write_bytes(b"half")
    (run / ".last-0002.tmp").mkdir()
    (run / "best" / "epoch-0002.h5").write_bytes(b"half")
    result = train([data_dir], "full", epochs=2, resume=True)
    assert [r.epoch for r in result.history] == [1, 2]
    assert models.load("full").card.provenance["epochs"] == 2
    assert sorted(p.name for p in run.iterdir()) == ["best", "state.json"]


def test_cli_train(data_dir, capsys):
    from epyseg_ij import cli

    argv = ["train", "--data", str(data_dir), "--encoder", "resnet18", "--name", "cli-model", "--epochs", "1"]
    argv += ["--tile", "64", "--batch", "4", "--val-fraction", "0"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1: loss" in out and "saved model 'cli-model'" in out
    assert models.load("cli-model").card.provenance["images"] == 4
    assert cli.main(argv) == 2
    assert "a model named 'cli-model' already exists" in capsys.readouterr().err


def test_mixed_bfloat16_training_saves_a_float32_model(data_dir):
    result = train([data_dir], "bf16", epochs=1, precision="mixed_bfloat16", **{**TINY, "steps_per_epoch": 3})
    model = models.load("bf16")
    assert {w.dtype for w in model.keras.get_weights()} == {np.dtype(np.float32)}
    assert np.isfinite(result.history[0].loss)
    with pytest.raises(InputError, match="precision must be one of"):
        train([data_dir], "bf8", epochs=1, precision="float8", **TINY)


def test_correction_loop(trained, data_dir, tmp_path):
    """segment into TA folders -> a person corrects one mask -> fine-tune on it only -> segment keeps the correction."""
    folder = tmp_path / "loop"
    folder.mkdir()
    for image in sorted(data_dir.glob("*.tif")):
        shutil.copy(image, folder / image.name)
    images = sorted(folder.glob("*.tif"))
    assert all(r.status == "written" for r in segment_files(images, model="tiny"))
    corrected = folder / "synth_002" / "handCorrection.tif"
    truth = tifffile.imread(data_dir / "synth_002" / "groundTruth.tif")
    tifffile.imwrite(corrected, truth)  # the person's corrections: here, the true outlines

    result = train(
        [folder], "tiny-corrected", base="tiny", epochs=1, corrected_only=True, **{**TINY, "val_fraction": 0}
    )
    assert result.card.provenance["images"] == 1
    reports = segment_files(images, model="tiny-corrected", overwrite=True)
    assert [r.status for r in reports].count("written") == 3
    np.testing.assert_array_equal(tifffile.imread(corrected), truth)
