"""EPySeg Models...: the model manager: list the models, import an .h5 file, download a published model, show a card.

run("EPySeg Models...", "action=download model=Linknet-vgg16-sigmoid-v2");
run("EPySeg Models...", "action=import file=[/data/wing.h5] name=wing");
card = call("epyseg.bridge.PyBridge.call", "models", "action=card model=default");
list = call("epyseg.bridge.PyBridge.call", "models");   // one model a line: name, kind, ready|missing, description
"""

from __future__ import annotations

import json
from pathlib import Path

from ... import models
from ...errors import InputError
from ..dialogs import Form, help_page
from ..options import Option
from ..service import Reply, Request, Service, command
from ._common import download, log, options

MODELS = "EPySeg Models..."
ACTIONS = {
    "card": "show the card of the model chosen below",
    "download": "download the published model chosen below",
    "import": "import the .h5 file below as a new model",
    "list": "write the list of models to the Log",
}
MODELS_OPTIONS = (
    Option("action", "choice", "list", tuple(ACTIONS), help="what to do"),
    Option("model", "str", "", help="the model to download or show"),
    Option("file", "path", "", help="the .h5 file to import (EPySeg, Keras or epyseg-ij Linknet)"),
    Option("name", "str", "", help="name of the imported model (default: the file's name)"),
    Option("encoder", "str", "", help="encoder of a file without a card, e.g. vgg16 (EPySeg's is recognised)"),
    Option("overwrite", "flag", False, help="replace a model of the same name"),
)
INTRO = (
    "The models EPySeg Segment can use by name: the shipped <code>default</code>, EPySeg's published models "
    "(downloaded once, md5-checked), <code>classical</code> (no network) and your own, imported here or trained "
    "with EPySeg Train. A model's <i>card</i> tells how it was trained and how its images are normalised."
)


@command("models")
def manage(request: Request, service: Service) -> Reply:
    """List, import, download or describe models (``action=``); the list by default."""
    values = options(request, service, MODELS, MODELS_OPTIONS, lambda: _dialog(service))
    action = values["action"]
    if action == "list":
        text = table(service)
        if request.display:
            log("EPySeg models:\n" + "\n".join("  " + line.replace("\t", "  ") for line in text.splitlines()))
        return Reply(text)
    if action == "card":
        card = _card(values["model"] or models.DEFAULT_MODEL, service)
        text = json.dumps(card, indent=1)
        if request.display:
            _show_card(card["name"], text, service)
        return Reply(text, {"path": str(card.get("path", ""))})
    if action == "download":
        path = _download(values["model"], service)
    else:
        path = _import(values, service)
    log(f"EPySeg: model ready: {path}")
    return Reply(str(path), {"path": str(path)})


def table(service: Service) -> str:
    """The models known by name, one per line: ``name<TAB>kind<TAB>ready|missing<TAB>description``."""
    lines = [
        f"{m.name}\t{m.kind}\t{'ready' if m.available else 'missing'}\t{m.description}" for m in models.list_models()
    ]
    lines += [f"{name}\tsession\tready\tregistered from Python" for name in sorted(service.models)]
    return "\n".join(lines)


def _card(name: str, service: Service) -> dict:
    if name in service.models:
        return {"path": "registered from Python", **json.loads(service.models[name].card.to_json())}
    return models.describe(name)


def _show_card(name: str, text: str, service: Service) -> None:
    if service.headless:
        log(f"EPySeg model {name}:\n{text}")
    else:
        import html

        from ij import IJ

        IJ.showMessage(f"EPySeg model {name}", f"<html><pre>{html.escape(text)}</pre></html>")


def _download(name: str, service: Service) -> Path:
    if name not in models.PRETRAINED:
        raise InputError(f"{MODELS}: choose a published model to download: model={' | '.join(models.PRETRAINED)}")
    service.compute(lambda progress: download(name, progress), what=f"{MODELS} {name}")
    return models.fetch(name)


def _import(values: dict, service: Service) -> Path:
    if not values["file"]:
        raise InputError(f"{MODELS}: give the .h5 file to import: file=[/path/model.h5]")
    source = Path(values["file"]).expanduser()
    name = values["name"] or source.stem
    return service.compute(
        lambda progress: models.import_model(source, name, values["encoder"] or None, values["overwrite"]),
        what=f"{MODELS} import {name}",
    )


def _dialog(service: Service) -> dict:
    known = models.list_models()
    names = {m.name: m.name if m.available else f"{m.name} (not downloaded)" for m in known}
    names.update({name: f"{name} (this session)" for name in service.models})
    form = Form("EPySeg Models", remember=("action", "model"))
    lines = [f"{m.name}: {m.description}{'' if m.available else ' (not downloaded)'}" for m in known]
    form.message("Models you can use by name:\n" + "\n".join(lines + [f"{n}: this session" for n in service.models]))
    form.choice("action", "Action", ACTIONS, "card")
    form.choice("model", "Model", names, models.DEFAULT_MODEL)
    form.text("file", "File to import (.h5)", browse="file")
    form.text("name", "Name for the imported model", "")
    form.text("encoder", "Encoder (files without a card)", "")
    form.flag("overwrite", "Replace a model of the same name", False)
    form.help(help_page(MODELS, INTRO, MODELS_OPTIONS, {"action": ACTIONS}))
    return form.show()
