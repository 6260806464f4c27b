"""A training run: its files in ``models.home() / "training" / NAME``, their atomic updates, and the Keras callback
that checkpoints every completed epoch (``make_monitor``).

* ``state.json``: settings, per-epoch history, the ranked best checkpoints, early-stopping counter;
* ``last-EEEE/``: network and optimizer state after epoch ``EEEE`` (a TensorFlow checkpoint), for ``resume``;
* ``best/epoch-EEEE.h5``: the ``keep_best`` best networks (ranked by validation loss, or training loss without a
  validation split), each a model file with its card.

Every file is written under a temporary name and renamed, and ``state.json`` is replaced last: a crash, a full
disk or Ctrl-C at any moment leaves the previous epoch's checkpoint whole.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import models
from .errors import CheckpointError, InputError, ModelError, first_line

log = logging.getLogger(__name__)

STATE = "state.json"


@dataclass(frozen=True)
class EpochReport:
    """What ``on_epoch`` receives after every completed epoch."""

    epoch: int  # 1-based number of the epoch just completed
    epochs: int
    loss: float
    iou: float
    val_loss: float | None
    val_iou: float | None
    seconds: float
    improved: bool  # the monitored loss is the best so far

    def summary(self) -> str:
        """One line for a log or a terminal."""
        text = f"epoch {self.epoch}/{self.epochs}: loss {self.loss:.4f} iou {self.iou:.3f}"
        if self.val_loss is not None:
            text += f", val_loss {self.val_loss:.4f} val_iou {self.val_iou:.3f}"
        return text + f" ({self.seconds:.0f} s){' *' if self.improved else ''}"


def run_dir(name: str) -> Path:
    """Where the checkpoints of the training run ``name`` live."""
    models.user_model_path(name)  # validates the name
    return models.home() / "training" / name


class Run:
    """The files of one training run (see the module docstring) and their atomic updates."""

    def __init__(self, path: Path):
        self.path = path
        self.state: dict[str, Any] = _new_state({})

    def _read_state(self) -> dict[str, Any] | None:
        path = self.path / STATE
        try:
            state = json.loads(path.read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise InputError(f"cannot read the training state {path}: {error.strerror or error}") from None
        except (ValueError, RecursionError) as error:  # not JSON (UnicodeDecodeError is a ValueError), too deep
            raise InputError(f"the training state {path} is unreadable ({first_line(error)})") from None
        if not isinstance(state, dict) or any(not isinstance(state.get(k), t) for k, t in _TYPES.items()):
            raise InputError(f"the training state {path} is not one epyseg-ij wrote (its fields have other types)")
        return {**_new_state({}), **state}

    def resume_hint(self) -> str:
        return f"{self.state['epoch']} epoch(s) saved in {self.path}"

    def start(self, settings: dict[str, Any], overwrite: bool) -> None:
        """Begin a new run, refusing to discard an interrupted one unless ``overwrite``."""
        try:
            old = self._read_state()
        except InputError:
            if not overwrite:
                raise
            old = None
        if old and not old.get("finished") and old["epoch"] > 0 and not overwrite:
            raise InputError(
                f"an interrupted training run of this name exists ({old['epoch']} epoch(s) in {self.path}): "
                "resume it, or overwrite to start again"
            )
        try:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
            self._write_state(_new_state(settings))
        except OSError as error:
            raise CheckpointError(f"cannot start the training run in {self.path} ({first_line(error)})") from None
        self.state = _new_state(settings)

    def resume_settings(self) -> dict[str, Any]:
        old = self._read_state()
        if not old or old["epoch"] == 0:
            raise InputError(f"nothing to resume: no interrupted training run in {self.path}")
        if old.get("finished"):
            raise InputError(f"the training run in {self.path} finished: nothing to resume")
        self.state = old
        self._tidy()
        return old["settings"]

    def _tidy(self) -> None:
        """Remove what an interruption in the middle of a save left behind (files that state.json does not list)."""
        listed = {self.state["last"], *(b["file"] for b in self.state["best"])}
        for path in [*self.path.glob("last-*"), *self.path.glob(".*.tmp"), *self.path.glob("best/*")]:
            if path.relative_to(self.path).as_posix() not in listed:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    def restore(self, network, optimizer) -> None:
        """Load the network and optimizer state of the last saved epoch."""
        from ._tf import tf

        optimizer.build(network.trainable_variables)
        prefix = self.path / self.state["last"] / "ckpt"
        tf().train.Checkpoint(model=network, optimizer=optimizer).read(str(prefix)).assert_existing_objects_matched()

    def save(self, network, card, report: EpochReport, score: float, monitor: str, wait: int, keep: int) -> None:
        """Checkpoint a completed epoch; on failure remove its partial files and raise ``CheckpointError``."""
        from ._tf import tf

        epoch = report.epoch
        state = json.loads(json.dumps(self.state))  # a copy: self.state changes only once all files are written
        last, tmp = f"last-{epoch:04d}", self.path / f".last-{epoch:04d}.tmp"
        best_file = f"best/epoch-{epoch:04d}.h5"
        ranked = sorted([*state["best"], {"epoch": epoch, "score": score, "file": best_file}], key=lambda b: b["score"])
        keep_this = any(b["epoch"] == epoch for b in ranked[:keep])
        written = [tmp, self.path / last] + ([self.path / best_file] if keep_this else [])
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            optimizer = network.optimizer
            tf().train.Checkpoint(model=network, optimizer=optimizer).write(str(tmp / "ckpt"))
            shutil.rmtree(self.path / last, ignore_errors=True)  # left by an interrupted save of this epoch
            os.replace(tmp, self.path / last)
            if keep_this:
                models.save_model(
                    network, self.path / best_file, dataclasses.replace(card, name=f"{card.name}-{epoch}")
                )
            state.update(
                epoch=epoch,
                last=last,
                best=ranked[:keep],
                wait=wait,
                monitor=monitor,
                history=[*state["history"], dataclasses.asdict(report)],
            )
            self._write_state(state)
        except (OSError, ModelError, tf().errors.OpError) as error:
            for path in written:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            previous = f"the checkpoint of epoch {self.state['epoch']} is intact" if self.state["epoch"] else ""
            raise CheckpointError(
                f"could not save the checkpoint of epoch {epoch} in {self.path} ({first_line(error)}); "
                f"{previous or 'no earlier checkpoint'}: free some disk space and resume"
            ) from None
        old_last, dropped = self.state.get("last"), [b for b in ranked[keep:] if b["epoch"] != epoch]
        self.state = state
        if old_last and old_last != last:
            shutil.rmtree(self.path / old_last, ignore_errors=True)
        for b in dropped:
            (self.path / b["file"]).unlink(missing_ok=True)

    def finish(self) -> None:
        """Mark the run finished and drop the optimizer state (the best checkpoints stay)."""
        if self.state.get("last"):
            shutil.rmtree(self.path / self.state["last"], ignore_errors=True)
        self.state.update(finished=True, last=None)
        try:
            self._write_state(self.state)
        except OSError as error:
            log.warning("could not mark %s finished: %s", self.path, error)

    def _write_state(self, state: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{STATE}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(state, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path / STATE)
        finally:
            tmp.unlink(missing_ok=True)


_TYPES = {"settings": dict, "epoch": int, "best": list, "wait": int, "history": list}  # checked on reading


def _new_state(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "settings": settings,
        "epoch": 0,
        "last": None,
        "best": [],
        "wait": 0,
        "monitor": None,
        "history": [],
        "finished": False,
    }


# ------------------------------------------------------------------------------------------- the Keras callback


def make_monitor(*args) -> Any:
    """The Keras callback of a training run (the class is made when TensorFlow is loaded, so importing stays light)."""
    from ._tf import tf

    return type("Monitor", (_Monitor, tf().keras.callbacks.Callback), {})(*args)


class _Monitor:
    """Progress, cancellation, checkpoints, keep-N-best and early stopping, as Keras callback methods."""

    def __init__(self, run, card, keep_best, patience, epochs, steps, on_epoch, on_step, cancelled):
        super().__init__()
        self.run, self.card, self.keep_best, self.patience = run, card, keep_best, patience
        self.epochs, self.steps = epochs, steps
        self.on_epoch_report, self.on_step, self.is_cancelled = on_epoch, on_step, cancelled
        self.cancelled = False
        self.diverged = ""  # what became NaN or infinite, where
        self.stopped_early = False
        self.started = time.perf_counter()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.diverged = f"{loss} at step {batch + 1} of epoch {self.epoch}"
            self.model.stop_training = True
            return
        if self.on_step:
            self.on_step((self.epoch - 1) * self.steps + batch + 1, self.epochs * self.steps)
        if self.is_cancelled():
            self.cancelled = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.cancelled or self.diverged:
            return  # an incomplete epoch is not saved: resume runs it again
        logs = logs or {}
        val = "val_loss" in logs
        score = float(logs["val_loss"] if val else logs["loss"])
        if not math.isfinite(score):
            self.diverged = f"{score} in the validation of epoch {epoch + 1}"
            self.model.stop_training = True
            return
        state = self.run.state
        improved = not state["best"] or score < state["best"][0]["score"]
        report = EpochReport(
            epoch=epoch + 1,
            epochs=self.epochs,
            loss=float(logs["loss"]),
            iou=float(logs.get("iou_score", math.nan)),
            val_loss=float(logs["val_loss"]) if val else None,
            val_iou=float(logs.get("val_iou_score", math.nan)) if val else None,
            seconds=time.perf_counter() - self.started,
            improved=improved,
        )
        wait = 0 if improved else state["wait"] + 1
        self.run.save(self.model, self.card, report, score, "val_loss" if val else "loss", wait, self.keep_best)
        log.info(report.summary())
        if self.patience is not None and wait >= self.patience and epoch + 1 < self.epochs:
            log.info("no improvement for %d epochs: stopping early", wait)
            self.stopped_early = True
            self.model.stop_training = True
        if self.on_epoch_report:
            self.on_epoch_report(report)
