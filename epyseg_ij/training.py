"""Train or fine-tune a network on images with outline masks; the result is a user model ``segment`` finds by name.

A training run lives in ``runs.run_dir(NAME)`` (its files and their atomic updates: ``epyseg_ij.runs``); every
completed epoch is a checkpoint there. At the end the best network is saved with ``models.save_model`` as
``models.user_model_path(NAME)``; the optimizer state is then deleted. A loss that becomes NaN or infinite stops the
run at once (``DivergedError``): that epoch is not saved, and the previous checkpoint stays as it was.

Loss and optimiser are EPySeg's: binary cross-entropy + (1 - soft Jaccard) over all seven channels, Adam at 1e-3.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import augment, checks, data, models, predict, replay
from .errors import Cancelled, CheckpointError, DivergedError, InputError, ModelError, first_line
from .replay import FINE_TUNING
from .runs import EpochReport, Run, make_monitor, run_dir

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "mixed_bfloat16")
VALIDATION_TILES = 32  # validation tiles per epoch, evenly spread over the validation images
MAX_EPOCHS, MAX_STEPS = 100_000, 10_000_000
__all__ = ["train", "run_dir", "EpochReport", "TrainResult", "CheckpointError", "DivergedError"]


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
    weights: Sequence[float] | None = None,
    replay: float | None = None,
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
    weights : one positive number per data folder, optional
        How often each folder's tiles are drawn, per pixel, relative to the others (default: 1 each).
    replay : float in [0, 1), optional
        Share of the training tiles drawn from synthetic epithelia (``epyseg_ij.replay``), so that fine-tuning on a
        few images does not forget other tissue. Default: 0.25 when fine-tuning a ``base``, 0 otherwise.
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
        Bad data or settings (the message names the parameter), a name that exists without ``overwrite``, a base
        model that does not fit. Masks that hold no cells are left out with a warning (``data.load_pairs``).
    CheckpointError
        A checkpoint could not be written; the previous one is intact.
    DivergedError
        The loss became NaN or infinite (try a lower learning rate); the previous checkpoint is intact.
    Cancelled
        ``cancel`` was set, ``on_epoch`` raised it, or Ctrl-C.

    Examples
    --------
    >>> result = train(["wing_discs/"], "wing-v1", base="Linknet-vgg16-sigmoid-v2", epochs=20)  # doctest: +SKIP
    >>> segment(image, model="wing-v1")  # doctest: +SKIP
    """
    folders = checks.paths("data_folders", data_folders)
    target = models.user_model_path(name)
    _check_call(base, keep_best, patience, augmentation, overwrite, resume, workers, on_epoch, on_step, cancel)
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
        "weights": None if weights is None else data.check_weights(weights, len(folders)),
        "replay": checks.number("replay", (FINE_TUNING if base else 0.0) if replay is None else replay, 0, below=1),
        "seed": seed,
        "precision": precision,
    }
    if resume:
        settings = run.resume_settings()
        log.info("resuming %s after epoch %d with its saved settings", name, run.state["epoch"])
    _check_settings(settings, epochs)
    pairs = data.find_pairs(settings["data"], settings["corrected_only"], settings.setdefault("weights", None))
    base_model, base_card = _base(settings["base"], settings["encoder"])
    load = dict(normalization=base_card.normalization, invert=settings["invert"], channel=settings["channel"])
    images = data.load_pairs(pairs, **load)  # every image, and the network, checked before the run folder changes
    network = _copy(base_model, base_card, settings["precision"])
    if not resume:
        run.start(settings, overwrite)
    try:
        hooks = (on_epoch, on_step, _cancel_check(cancel))
        return _fit(run, name, settings, network, base_card, images, epochs, keep_best, patience, workers, *hooks)
    except KeyboardInterrupt:
        raise Cancelled(f"training interrupted; continue with resume ({run.resume_hint()})") from None


def _check_call(base, keep_best, patience, augmentation, overwrite, resume, workers, on_epoch, on_step, cancel):
    """The arguments of ``train`` that are not saved settings (those are checked by ``_check_settings``)."""
    checks.instance("base", base, (str, os.PathLike))
    checks.integer("keep_best", keep_best, 1, 1000)
    checks.integer("patience", patience, 1, MAX_EPOCHS, optional=True)
    checks.instance("augmentation", augmentation, augment.Augmentation)
    checks.flag("overwrite", overwrite)
    checks.flag("resume", resume)
    checks.integer("workers", workers, 1, 64, optional=True)
    checks.function("on_epoch", on_epoch)
    checks.function("on_step", on_step)
    if not (cancel is None or callable(cancel) or callable(getattr(cancel, "is_set", None))):
        checks.function("cancel", cancel)  # fails: neither an Event nor a function


def _check_settings(settings: dict[str, Any], epochs: int) -> None:
    """Types and ranges of a run's settings: as given, or as read back from a run folder for ``resume``."""
    checks.integer("epochs", epochs, 1, MAX_EPOCHS)
    checks.text("encoder", settings["encoder"])
    tile, batch = data.check_tile(settings["tile"]), checks.integer("batch", settings["batch"], 1, predict.MAX_BATCH)
    if batch * tile * tile > predict.MAX_CALL_PIXELS:
        raise InputError(
            f"tile={tile} and batch={batch} put {batch * tile * tile / 1e6:.0f} Mpx through the network per step "
            f"(at most {predict.MAX_CALL_PIXELS / 1e6:.0f} Mpx): use a smaller tile or batch"
        )
    checks.integer("steps_per_epoch", settings["steps_per_epoch"], 1, MAX_STEPS, optional=True)
    checks.number("val_fraction", settings["val_fraction"], 0, below=1)
    checks.number("learning_rate", settings["learning_rate"], maximum=1, above=0)
    checks.integer("channel", settings["channel"], 0, optional=True)
    checks.flag("invert", settings["invert"])
    checks.flag("corrected_only", settings["corrected_only"])
    checks.integer("seed", settings["seed"], 0, 2**32 - 1)
    checks.choice("precision", settings.setdefault("precision", "float32"), PRECISIONS)
    _check_augmentation(settings["augmentation"])


def _check_augmentation(values: dict[str, Any] | None) -> None:
    """Augmentation settings: probabilities in [0, 1], amounts finite and >= 0 (gamma > 0)."""
    if values is None:
        return
    fields = {f.name for f in dataclasses.fields(augment.Augmentation)}
    checks.instance("augmentation", values, dict)
    for key, value in values.items():
        checks.choice("an augmentation setting", key, fields)
        if key == "dihedral":
            checks.flag(f"augmentation.{key}", value)
        elif key == "gamma":
            checks.number(f"augmentation.{key}", value, above=0)
        else:
            checks.number(f"augmentation.{key}", value, 0, 1 if key.startswith("p_") else None)


def _cancel_check(cancel) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    return cancel.is_set if hasattr(cancel, "is_set") else cancel


# ------------------------------------------------------------------------------------------------- the network


def _base(base: str | None, encoder: str) -> tuple[models.Model | None, models.ModelCard]:
    """The base model (None for a new network) and the card the result will carry (from the base, if any)."""
    if base is None:
        return None, models.ModelCard(name="", encoder=encoder)
    model = models.load(base)
    card = model.card
    if model.keras is None:
        raise InputError(f"base model {base!r} is not a network: it cannot be trained")
    if card.input_channels != 1:
        raise InputError(f"base model {base!r} takes {card.input_channels} input channels; training images give 1")
    if card.outputs != "epyseg7":
        raise InputError(
            f"base model {base!r} has {card.n_outputs} '{card.outputs}' output(s); training needs EPySeg's 7 "
            "output channels"
        )
    return model, card


def _copy(base: models.Model | None, card: models.ModelCard, precision: str):
    """A fresh trainable network: random, or a copy of the base model's (which ``segment`` shares: it must not
    change)."""
    network = build(card, precision)
    if base is not None:
        network.set_weights(base.keras.get_weights())
    return network


def build(card: models.ModelCard, precision: str = "float32"):
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


def compile_network(network, learning_rate: float):
    """Compile a network with EPySeg's loss and metric (weighted, ``losses``) and Adam; returns the optimizer."""
    from . import losses
    from ._tf import tf

    optimizer = tf().keras.optimizers.Adam(learning_rate)
    network.compile(optimizer, loss=losses.bce_jaccard_loss, metrics=[losses.iou_score])
    return optimizer


# --------------------------------------------------------------------------------------------------- the loop


def _fit(
    run, name, settings, network, base_card, images, epochs, keep_best, patience, workers, on_epoch, on_step, cancelled
) -> TrainResult:
    from ._tf import tf

    tensorflow = tf()
    train_images, val_images = data.split(images, settings["val_fraction"])
    tile, batch = settings["tile"], settings["batch"]
    steps = settings["steps_per_epoch"] or max(
        1, math.ceil(sum(im.shape[0] * im.shape[1] for im in train_images) / (tile * tile * batch))
    )
    if settings.setdefault("replay", 0.0):
        extra = replay.synthetic_images(base_card.normalization, tile, settings["seed"])
        train_images = replay.mix(train_images, extra, settings["replay"])
    optimizer = compile_network(network, settings["learning_rate"])
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
    callback = make_monitor(run, card, keep_best, patience, epochs, steps, on_epoch, on_step, cancelled)
    if start < epochs:
        network.fit(
            stream,
            epochs=epochs,
            initial_epoch=start,
            steps_per_epoch=steps,
            validation_data=validation,
            callbacks=[callback],
            verbose=0,
        )
    if callback.diverged:
        raise DivergedError(
            f"training stopped: the loss became {callback.diverged}; nothing of that epoch was saved "
            f"({run.resume_hint()}): train again with a lower learning rate than {settings['learning_rate']:g}"
        )
    if callback.cancelled:
        raise Cancelled(f"training cancelled; continue with resume ({run.resume_hint()})")
    return _finish(run, network, card, name, settings, len(images), callback.stopped_early)


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
        weights=settings["weights"],
        replay=settings["replay"],
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
    except (OSError, ModelError) as error:
        raise CheckpointError(
            f"could not save the model {name!r} ({first_line(error)}); its checkpoints are intact in {run.path}: "
            "free some disk space and resume"
        ) from None
    run.finish()
    log.info("saved %s (epoch %d of %d) as %s", name, top["epoch"], len(history), path)
    return TrainResult(path, card, history, top["epoch"], stopped_early)
