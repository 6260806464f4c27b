"""EPySeg Train: train or fine-tune a model on Tissue Analyzer folders, with ImageJ's progress bar; Esc cancels.

run("EPySeg Train", "data=[/data/wing;/data/eye] name=wing-v1 from=default epochs=20 corrected");
"""

from __future__ import annotations

from ...errors import Cancelled, EpysegError, InputError
from ..options import Option, format_options
from ..service import Reply, Request, Service, command
from ._common import dialog_number, log, options

TRAIN = "EPySeg Train"
TRAIN_OPTIONS = (
    Option("data", "path", "", help="training folders (TA layout or image/mask pairs), separated by ';'"),
    Option("name", "str", "", help="name of the new model"),
    Option("from", "str", "", help="model to fine-tune (name or .h5 path); empty = a new network"),
    Option("encoder", "str", "vgg16"),
    Option("epochs", "int", 100, minimum=1),
    Option("steps", "int", 0, minimum=0, maximum=10_000_000, help="steps per epoch, 0 = cover the images once"),
    Option("tile", "int", 256, minimum=32),
    Option("batch", "int", 8, minimum=1),
    Option("validation", "float", 0.1, minimum=0, maximum=0.99, help="fraction of the images kept for validation"),
    Option("channel", "int", 0, minimum=0, maximum=999),
    Option("invert", "flag", False),
    Option("corrected", "flag", False, help="only Tissue Analyzer masks corrected by hand"),
    Option("resume", "flag", False),
    Option("overwrite", "flag", False),
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

    def run(progress):
        def on_epoch(report):
            log(f"EPySeg: {values['name']}: {report.summary()}")

        return engine_train(
            folders, values["name"], base=values["from"] or None, encoder=values["encoder"],
            epochs=values["epochs"], tile=values["tile"], batch=values["batch"],
            steps_per_epoch=values["steps"] or None, val_fraction=values["validation"],
            channel=values["channel"] - 1 if values["channel"] else None, invert=values["invert"],
            corrected_only=values["corrected"], overwrite=values["overwrite"], resume=values["resume"],
            on_epoch=on_epoch, on_step=progress.show, cancel=service.cancel_requested,
        )  # fmt: skip

    result = service.compute(run, what=f"{TRAIN} {values['name']}: step")
    log(f"EPySeg: model {values['name']!r} saved to {result.path} (best epoch {result.best_epoch})")
    return Reply(str(result.path), {"path": str(result.path), "best_epoch": int(result.best_epoch)})


def _dialog(service: Service) -> str:
    from ij.gui import GenericDialog

    gd = GenericDialog(TRAIN)
    gd.addDirectoryField("Data folder", "")
    gd.addStringField("Name of the new model", "", 20)
    gd.addStringField("From (model to fine-tune; empty = new)", "", 20)
    gd.addNumericField("Epochs", 100, 0)
    gd.addNumericField("Tile size (px)", 256, 0)
    gd.addNumericField("Batch (tiles per step)", 8, 0)
    gd.addCheckbox("Corrected masks only", False)
    gd.addCheckbox("Overwrite an existing model", False)
    gd.showDialog()
    if gd.wasCanceled():
        raise Cancelled(f"{TRAIN} cancelled")
    values = {
        "data": str(gd.getNextString()),
        "name": str(gd.getNextString()),
        "from": str(gd.getNextString()),
        "epochs": dialog_number(gd),
        "tile": dialog_number(gd),
        "batch": dialog_number(gd),
        "corrected": bool(gd.getNextBoolean()),
        "overwrite": bool(gd.getNextBoolean()),
    }
    return format_options(values, TRAIN_OPTIONS) or " "
