"""Train or fine-tune a network on images with outline masks; the result is a user model ``segment`` finds by name.

A training run lives in ``models.home() / "training" / NAME``:

* ``state.json``: settings, per-epoch history, the ranked best checkpoints, early-stopping counter;
* ``last-EEEE/``: network and optimizer state after epoch ``EEEE`` (a TensorFlow checkpoint), for ``resume``;
* ``best/epoch-EEEE.h5``: the ``keep_best`` best networks (ranked by validation loss, or training loss without a
  validation split), each a model file with its card.

Every file is written under a temporary name and renamed, and ``state.json`` is replaced last: a crash, a full
disk or Ctrl-C at any moment leaves the previous epoch's checkpoint whole. At the end the best network is saved
with ``models.save_model`` as ``models.user_model_path(NAME)``; the optimizer state is then deleted.

Loss and optimiser are EPySeg's: binary cross-entropy + (1 - soft Jaccard) over all seven channels, Adam at 1e-3.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import augment, data, models
from .errors import Cancelled, EpysegError, InputError

log = logging.getLogger(__name__)

STATE = "state.json"
PRECISIONS = ("float32", "mixed_bfloat16")
VALIDATION_TILES = 32  # validation tiles per epoch, evenly spread over the validation images


class CheckpointError(EpysegError):
    """A checkpoint could not be written (typically a full disk); the previous one is intact."""


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


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` returns."""

    path: Path  # the saved model, ``models.user_model_path(name)``
    card: models.ModelCard
    history: list[EpochReport]
    best_epoch: int
    stopped_early: bool


def train(
    data_folders: Sequence[str | os.PathLike] | str | os.PathLike,
    name: str,
    *,
    base: str | os.PathLike | None = None,
    encoder: str = "vgg16",
    epochs: int = 100,
    tile: int = 256,
    batch: int = 8,
    steps_per_epoch: int | None = None,
    val_fraction: float = 0.1,
    learning_rate: float = 1e-3,
    keep_best: int = 5,
    patience: int | None = 10,
    augmentation: augment.Augmentation | None = augment.DEFAULT,
    channel: int | None = None,
    invert: bool = False,
    corrected_only: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    seed: int = 0,
    precision: str = "float32",
    workers: int | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a Linknet on image/mask pairs and save it as a user model.

    Parameters
    ----------
    data_folders : path or paths
        Data folders (Tissue Analyzer layout or image/mask pairs, see ``epyseg_ij.data``).
    name : str
        Name of the model to create (``segment --model NAME``).
    base : name or path, optional
        Fine-tune this model (a published EPySeg model, a user model or an .h5 file) instead of starting from
        random weights; its encoder, normalisation and tiling are kept.
    encoder : str
        Encoder of a new network (segmentation-models backbone) when ``base`` is not given.
    epochs : int
        Total number of epochs (including those done before a ``resume``).
    tile, batch : int
        Training tile size (multiple of 32) and tiles per step.
    steps_per_epoch : int, optional
        Default: as many tiles as it takes to cover the training images once.
    val_fraction : float
        Fraction of the images kept for validation (every k-th image); 0 ranks checkpoints by training loss.
    learning_rate : float
        Adam's learning rate.
    keep_best : int
        How many best checkpoints to keep.
    patience : int or None
        Stop after this many epochs without improvement; None never stops early.
    augmentation : Augmentation or None
        Tile augmentation (``epyseg_ij.augment``); None for plain random crops.
    channel : int, optional
        Membrane channel (0-based) of multichannel images.
    invert : bool
        Set for dark membranes on a bright background (then also segment with ``invert=True``).
    corrected_only : bool
        Train only on Tissue Analyzer masks that a person corrected after ``segment`` wrote them.
    overwrite : bool
        Replace an existing model called ``name`` (and discard an interrupted run of that name).
    resume : bool
        Continue an interrupted run of that name from its last completed epoch, with its saved settings.
    seed : int
        Seed of the tile sampling and augmentation.
    precision : "float32" or "mixed_bfloat16"
        Arithmetic of training. bfloat16 is about 1.8x faster on CPUs with AVX512-BF16 or AMX (and much slower on
        others); weights and the saved model stay float32 either way.
    workers : int, optional
        Threads making training batches (default ``data.default_workers()``: 1 on a CPU, more beside a GPU).
    on_epoch : callable(EpochReport), optional
        Called after every epoch; raising ``errors.Cancelled`` from it stops training.
    on_step : callable(done, total), optional
        Called after every training step with the steps done and the steps of the whole run (``epochs`` times
        the steps per epoch; after a ``resume``, ``done`` starts past the epochs already run).
    cancel : threading.Event or callable returning bool, optional
        Checked after every step; when set, training stops and ``errors.Cancelled`` is raised. The last completed
        epoch stays on disk and ``resume=True`` continues from it.

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        Bad data or settings, a name that exists without ``overwrite``, a base model that does not fit.
    CheckpointError
        A checkpoint could not be written; the previous one is intact.
    Cancelled
        ``cancel`` was set, ``on_epoch`` raised it, or Ctrl-C.

    Examples
    --------
    >>> result = train(["wing_discs/"], "wing-v1", base="Linknet-vgg16-sigmoid-v2", epochs=20)  # doctest: +SKIP
    >>> segment(image, model="wing-v1")  # doctest: +SKIP
    """
    folders = [data_folders] if isinstance(data_folders, str | os.PathLike) else list(data_folders)
    target = models.user_model_path(name)
    if target.exists() and not overwrite:
        raise InputError(f"a model named {name!r} already exists ({target}); choose another name or overwrite it")
    run = Run(run_dir(name))
    settings = {
        "data": [str(Path(f).resolve()) for f in folders],
        "base": None if base is None else str(Path(base).resolve() if Path(base).exists() else base),
        "encoder": encoder,
        "tile": tile,
        "batch": batch,
        "steps_per_epoch": steps_per_epoch,
        "val_fraction": val_fraction,
        "learning_rate": learning_rate,
        "augmentation": None if augmentation is None else dataclasses.asdict(augmentation),
        "channel": channel,
        "invert": invert,
        "corrected_only": corrected_only,
        "seed": seed,
        "precision": precision,
    }
    if resume:
        settings = run.resume_settings()
        log.info("resuming %s after epoch %d with its saved settings", name, run.state["epoch"])
    _check_settings(settings, epochs, keep_best)
    pairs = data.find_pairs(settings["data"], settings["corrected_only"])
    if not resume:
        run.start(settings, overwrite)
    try:
        hooks = (on_epoch, on_step, _cancel_check(cancel))
        return _fit(run, name, settings, pairs, epochs, keep_best, patience, workers, *hooks)
    except KeyboardInterrupt:
        raise Cancelled(f"training interrupted; continue with resume ({run.resume_hint()})") from None


def run_dir(name: str) -> Path:
    """Where the checkpoints of the training run ``name`` live."""
    models.user_model_path(name)  # validates the name
    return models.home() / "training" / name


def _check_settings(settings: dict[str, Any], epochs: int, keep_best: int) -> None:
    data.check_tile(settings["tile"])
    if settings["batch"] < 1 or epochs < 1 or keep_best < 1:
        raise InputError("batch, epochs and keep_best must be at least 1")
    if settings["steps_per_epoch"] is not None and settings["steps_per_epoch"] < 1:
        raise InputError("steps_per_epoch must be at least 1")
    if not 0 <= settings["val_fraction"] < 1:
        raise InputError(f"the validation fraction must be in [0, 1), got {settings['val_fraction']}")
    if settings.setdefault("precision", "float32") not in PRECISIONS:
        raise InputError(f"unknown precision {settings['precision']!r}; use one of {', '.join(PRECISIONS)}")


def _cancel_check(cancel) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    return cancel.is_set if hasattr(cancel, "is_set") else cancel


# ------------------------------------------------------------------------------------------------- the network


def _network(settings: dict[str, Any]) -> tuple[Any, models.ModelCard]:
    """A fresh trainable network and the card its result will carry (from the base model, if any)."""
    if settings["base"] is None:
        card = models.ModelCard(name="", encoder=settings["encoder"])
        return _build(card, settings["precision"]), card
    base = models.load(settings["base"])
    card = base.card
    if card.input_channels != 1:
        raise InputError(
            f"base model {settings['base']!r} takes {card.input_channels} input channels; training images give 1"
        )
    if card.outputs != "epyseg7":
        raise InputError(
            f"base model {settings['base']!r} has {card.n_outputs} '{card.outputs}' output(s); training needs "
            "EPySeg's 7 output channels"
        )
    # A copy: the loaded model is shared with segment() through the model cache and must not change.
    network = _build(card, settings["precision"])
    network.set_weights(base.keras.get_weights())
    return network, card


def _build(card: models.ModelCard, precision: str):
    """The network of a card, computing in ``precision``; its weights (and the loss) stay float32."""
    if precision == "float32":
        return models.build_linknet(card.encoder, card.n_outputs, card.input_channels)
    from ._tf import tf

    keras = tf().keras
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        network = models.build_linknet(card.encoder, card.n_outputs, card.input_channels)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    # The loss sees float32 outputs; a weightless layer, so the saved weights are those of the float32 network.
    outputs = keras.layers.Activation("linear", dtype="float32")(network.output)
    return keras.Model(network.input, outputs)


def _compile(network, learning_rate: float):
    from ._tf import sm, tf

    optimizer = tf().keras.optimizers.Adam(learning_rate)
    network.compile(optimizer, loss=sm().losses.bce_jaccard_loss, metrics=[sm().metrics.iou_score])
    return optimizer


# --------------------------------------------------------------------------------------------------- the loop


def _fit(run, name, settings, pairs, epochs, keep_best, patience, workers, on_epoch, on_step, cancelled) -> TrainResult:
    from ._tf import tf

    tensorflow = tf()
    train_pairs, val_pairs = data.split(pairs, settings["val_fraction"])
    network, base_card = _network(settings)
    load = dict(normalization=base_card.normalization, invert=settings["invert"], channel=settings["channel"])
    train_images = [data.load_pair(p, **load) for p in train_pairs]
    val_images = [data.load_pair(p, **load) for p in val_pairs]
    tile, batch = settings["tile"], settings["batch"]
    steps = settings["steps_per_epoch"] or max(
        1, math.ceil(sum(im.shape[0] * im.shape[1] for im in train_images) / (tile * tile * batch))
    )
    optimizer = _compile(network, settings["learning_rate"])
    start = run.state["epoch"]
    if start:
        run.restore(network, optimizer)
    if start >= epochs:
        log.info("%s already ran %d epochs", name, start)
    card = dataclasses.replace(base_card, name=name)
    aug = settings["augmentation"]
    stream = data.dataset(
        train_images,
        tile,
        batch,
        augment.NONE if aug is None else augment.Augmentation(**aug),
        seed=(settings["seed"], start),
        workers=workers,
    )
    validation = None
    if val_images:
        vx, vy = data.grid_tiles(val_images, tile, limit=VALIDATION_TILES)
        validation = tensorflow.data.Dataset.from_tensor_slices((vx, vy)).batch(batch)
    log.info(
        "training %s: %d training and %d validation images, %d steps of %d tiles of %d px per epoch",
        name, len(train_images), len(val_images), steps, batch, tile,
    )  # fmt: skip
    monitor = _monitor(run, card, keep_best, patience, epochs, steps, on_epoch, on_step, cancelled)
    if start < epochs:
        network.fit(
            stream,
            epochs=epochs,
            initial_epoch=start,
            steps_per_epoch=steps,
            validation_data=validation,
            callbacks=[monitor],
            verbose=0,
        )
    if monitor.cancelled:
        raise Cancelled(f"training cancelled; continue with resume ({run.resume_hint()})")
    return _finish(run, network, card, name, settings, len(pairs), monitor.stopped_early)


def _finish(run, network, card, name, settings, n_images, stopped_early) -> TrainResult:
    best = run.state["best"]
    if not best:
        raise InputError(f"training run {name!r} has no completed epoch to save")
    top = best[0]
    models.load_weights(network, run.path / top["file"])
    history = [EpochReport(**h) for h in run.state["history"]]
    provenance = models.stamp(
        trained_by="epyseg-ij train",
        base=settings["base"] or f"new {settings['encoder']} network",
        data=settings["data"],
        images=n_images,
        epochs=len(history),
        best_epoch=top["epoch"],
        monitor=run.state["monitor"],
        best_loss=round(top["score"], 5),
        tile=settings["tile"],
        batch=settings["batch"],
        learning_rate=settings["learning_rate"],
        trained_from_card=card.provenance or None,
    )
    card = dataclasses.replace(card, provenance=provenance)
    try:
        path = models.save_model(network, models.user_model_path(name), card)
    except OSError as error:
        raise CheckpointError(
            f"could not save the model {name!r} ({_first_line(error)}); its checkpoints are intact in {run.path}: "
            "free some disk space and resume"
        ) from None
    run.finish()
    log.info("saved %s (epoch %d of %d) as %s", name, top["epoch"], len(history), path)
    return TrainResult(path, card, history, top["epoch"], stopped_early)


def _monitor(*args) -> Any:
    """The Keras callback of ``train`` (the class is made when TensorFlow is loaded, so importing stays light)."""
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
        self.stopped_early = False
        self.started = time.perf_counter()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.on_step:
            self.on_step((self.epoch - 1) * self.steps + batch + 1, self.epochs * self.steps)
        if self.is_cancelled():
            self.cancelled = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.cancelled:
            return  # an incomplete epoch is not saved: resume runs it again
        logs = logs or {}
        val = "val_loss" in logs
        score = float(logs["val_loss"] if val else logs["loss"])
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


# -------------------------------------------------------------------------------------------------- checkpoints


class Run:
    """The files of one training run (see the module docstring) and their atomic updates."""

    def __init__(self, path: Path):
        self.path = path
        self.state: dict[str, Any] = _new_state({})

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / STATE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise InputError(f"the training state {self.path / STATE} is unreadable ({error})") from None

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
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.state = _new_state(settings)
        self._write_state(self.state)

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
        except (OSError, tf().errors.OpError) as error:
            for path in written:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            previous = f"the checkpoint of epoch {self.state['epoch']} is intact" if self.state["epoch"] else ""
            raise CheckpointError(
                f"could not save the checkpoint of epoch {epoch} in {self.path} ({_first_line(error)}); "
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


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
