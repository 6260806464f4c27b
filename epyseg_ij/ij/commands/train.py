"""EPySeg Train: train or fine-tune a model on Tissue Analyzer folders, with ImageJ's progress bar; Esc cancels.

run("EPySeg Train", "data=[/data/wing;/data/eye] name=wing-v1 from=default epochs=20 corrected");
"""

from __future__ import annotations

from ... import data
from ...errors import EpysegError, InputError
from ..dialogs import Form, help_page
from ..options import Option
from ..service import Reply, Request, Service, command
from ._common import load_model, log, options

TRAIN = "EPySeg Train"
TRAIN_OPTIONS = (
    Option("data", "path", "", help="training folders (Tissue Analyzer layout or image/mask pairs), separated by ';'"),
    Option("name", "str", "", help="name of the new model (then segment with model=NAME)"),
    Option("from", "str", "", help="model to fine-tune (name or .h5 path); empty: a new network from scratch"),
    Option("encoder", "str", "vgg16", help="encoder of a new network (ignored when fine-tuning)"),
    Option("epochs", "int", 100, minimum=1, help="passes over the training images; 20 are enough to fine-tune"),
    Option("steps", "int", 0, minimum=0, maximum=10_000_000, help="steps per epoch, 0 = cover the images once"),
    Option("tile", "int", 256, minimum=32, help="training tile size in px (a multiple of 32)"),
    Option("batch", "int", 8, minimum=1, help="tiles per training step (lower it if memory runs out)"),
    Option("validation", "float", 0.1, minimum=0, maximum=0.99, help="fraction of the images kept for validation"),
    Option("channel", "int", 0, minimum=0, maximum=999, help="membrane channel, from 1 (multichannel images)"),
    Option("invert", "flag", False, help="dark membranes on a bright background"),
    Option("corrected", "flag", False, help="only Tissue Analyzer masks corrected by hand since EPySeg wrote them"),
    Option("resume", "flag", False, help="continue an interrupted training of this name"),
    Option("overwrite", "flag", False, help="replace an existing model of this name"),
)


@command("train")
def train(request: Request, service: Service) -> Reply:
    """Train or fine-tune a model on Tissue Analyzer folders; ImageJ's progress bar, Esc cancels."""
    values = options(request, service, TRAIN, TRAIN_OPTIONS, lambda: _dialog(service))
    try:
        from ...training import train as engine_train
    except ImportError:
        raise EpysegError(f"{TRAIN}: training is not available in this version of epyseg-ij") from None
    folders = [f.strip() for f in values["data"].split(";") if f.strip()]
    if not folders:
        raise InputError(f"{TRAIN}: give the training folders: data=[/path/one;/path/two]")
    if not values["name"]:
        raise InputError(f"{TRAIN}: give the new model a name: name=my-model")
    found = _found(folders, values)

    def run(progress):
        def on_epoch(report):
            log(f"EPySeg: {values['name']}: {report.summary()}")

        if values["from"]:
            load_model(values["from"], progress)  # a published model is downloaded with a progress bar
        progress.say("reading the training images…")
        return engine_train(
            folders, values["name"], base=values["from"] or None, encoder=values["encoder"],
            epochs=values["epochs"], tile=values["tile"], batch=values["batch"],
            steps_per_epoch=values["steps"] or None, val_fraction=values["validation"],
            channel=values["channel"] - 1 if values["channel"] else None, invert=values["invert"],
            corrected_only=values["corrected"], overwrite=values["overwrite"], resume=values["resume"],
            on_epoch=on_epoch, on_step=progress.show, cancel=service.cancel_requested,
        )  # fmt: skip

    result = service.compute(run, what=f"{TRAIN} {values['name']}", unit="steps")
    n_images = int(result.card.provenance.get("images", found["used"]))
    n_train, n_val = (len(part) for part in data.split(range(n_images), values["validation"]))
    log(
        f"EPySeg: model {values['name']!r} saved to {result.path} (best epoch {result.best_epoch}); "
        f"trained on {_count(n_images, 'image')}: {n_train} for training, {n_val} for validation"
    )
    objects = {**found, "path": str(result.path), "best_epoch": int(result.best_epoch)}
    objects.update(images=n_images, training=n_train, validation=n_val)
    return Reply(str(result.path), objects)


def _found(folders: list[str], values: dict) -> dict[str, int]:
    """Count the images and corrected masks in the data folders, and log how they will be used."""
    pairs = data.find_pairs(folders)  # the same errors as training (missing folder, image without mask...)
    corrected = sum(p.corrected is True for p in pairs)
    machine = sum(p.corrected is False for p in pairs)
    used = corrected if values["corrected"] else len(pairs)
    log(
        f"EPySeg: {TRAIN}: {_count(len(pairs), 'image')} with masks in {_count(len(folders), 'folder')}: "
        f"{corrected} corrected by hand, {machine} unchanged machine masks, "
        f"{len(pairs) - corrected - machine} of unknown origin (no epyseg-ij marker)"
    )
    if not used:
        raise InputError(
            f"{TRAIN}: none of the {len(pairs)} masks was corrected by hand since EPySeg wrote it: correct some "
            "handCorrection.tif masks first, or train on all masks (leave out 'corrected')"
        )
    n_train, n_val = (len(part) for part in data.split(range(used), values["validation"]))
    which = "the corrected masks" if values["corrected"] else "all masks"
    log(f"EPySeg: {TRAIN}: training on {which}: {_count(n_train, 'image')} for training, {n_val} for validation")
    return {"found": len(pairs), "corrected": corrected, "machine": machine, "used": used}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


# The words of the dialog and the help page for the choices.
FROM_NEW = ""
INTRO = (
    "Teach a model your tissue: segment your images (EPySeg Segment, output <i>Tissue Analyzer mask</i>), correct "
    "some <code>handCorrection.tif</code> masks in Tissue Analyzer or ImageJ, then train here <i>from</i> the "
    "model you segmented with, on the <i>corrected</i> masks only, for a few epochs. Segment again with the new "
    "model: masks you corrected are never replaced."
)


def _dialog(service: Service) -> dict:
    """The GUI dialog, with the defaults of the correction loop: fine-tune the default model, 20 epochs, corrected
    masks only."""
    from ... import models

    starts = {m.name: m.name for m in models.list_models() if m.kind != "classical"}
    starts.update({name: f"{name} (this session)" for name in service.models})
    starts[FROM_NEW] = "a new network (from scratch: needs many masks)"
    form = Form(TRAIN, remember=("data", "from", "epochs", "tile", "batch", "validation", "corrected", "invert"))
    form.message("Fine-tune a model on your corrected Tissue Analyzer masks (see Help).")
    form.text("data", "Training data folder", browse="folder")
    form.text("name", "Name of the new model", "")
    form.choice("from", "Start from", starts, models.DEFAULT_MODEL)
    form.number("epochs", "Epochs (passes over the images)", 20)
    form.number("tile", "Tile size", 256, "px")
    form.number("batch", "Tiles per step", 8)
    form.number("validation", "Kept for validation", 0.1, "of the images")
    form.flag("corrected", "Only masks corrected by hand (recommended)", True)
    form.flag("invert", "Dark membranes on a bright background", False)
    form.flag("resume", "Resume an interrupted training of this name", False)
    form.flag("overwrite", "Replace an existing model of this name", False)
    form.help(help_page(TRAIN, INTRO, TRAIN_OPTIONS, {}))
    return form.show()
