"""The EPySeg commands of ImageJ: Segment, Measure, Train, Models, About, and the string-API helpers.

Each command is a function ``(Request, Service) -> Reply`` that runs on the caller's thread: it parses the options
(``options.parse``, identical headless and in the GUI; a ``GenericDialog`` with the same keys when a GUI user runs
it from the menu, so the Recorder writes a macro line that parses back), reads the image, hands the heavy work to
``Service.compute`` (the worker thread) and then shows or returns the results.

Macro use::

    run("EPySeg Segment", "model=default tta=none channel=1 output=[labels outlines rois results]");
    n = call("epyseg.bridge.PyBridge.call", "segment", "model=default output=[labels]");
"""

from __future__ import annotations

import colorsys
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import Cancelled, EpysegError, InputError
from . import convert, measure
from .options import Option, format_options, parse
from .service import Reply, Request, Service

log = logging.getLogger(__name__)

MIN_SIDE = 8  # px; smaller images hold no cell worth segmenting
OUTPUTS = ("labels", "outlines", "bonds", "rois", "results", "ta")

SEGMENT = "EPySeg Segment"
SEGMENT_OPTIONS = (
    Option("model", "str", "default", help="model name or .h5 path"),
    Option("channel", "int", 0, minimum=0, help="membrane channel, from 1 (multichannel and RGB images)"),
    Option("invert", "flag", False, help="dark membranes on a bright background"),
    Option("normalization", "choice", "model", ("model", "minmax", "percentile")),
    Option("tta", "choice", "none", ("none", "flip", "epyseg")),
    Option("tile", "int", 0, minimum=0, help="tile size in px, 0 = the model's"),
    Option("overlap", "int", 0, minimum=0, help="context between tiles in px, 0 = the model's"),
    Option("batch", "int", 8, minimum=1, help="tiles per network call"),
    Option("minimum", "int", 0, minimum=0, help="merge cells smaller than this (px)"),
    Option("output", "words", ("labels", "rois", "results"), OUTPUTS),
    Option("folder", "path", "", help="segment every image of this folder (TA layout) instead of the current one"),
    Option("save", "path", "", help="folder for the result files"),
    Option("overwrite", "flag", False, help="replace existing results (never a hand-corrected TA mask)"),
)

MEASURE = "EPySeg Measure"
MEASURE_OPTIONS = (
    Option("output", "words", ("rois", "results"), ("rois", "results")),
    Option("save", "path", ""),
    Option("overwrite", "flag", False, help="replace existing result files"),
)

TRAIN = "EPySeg Train"
TRAIN_OPTIONS = (
    Option("data", "path", "", help="training folders (TA layout or image/mask pairs), separated by ';'"),
    Option("name", "str", "", help="name of the new model"),
    Option("from", "str", "", help="model to fine-tune (name or .h5 path); empty = a new network"),
    Option("encoder", "str", "vgg16"),
    Option("epochs", "int", 100, minimum=1),
    Option("steps", "int", 0, minimum=0, help="steps per epoch, 0 = cover the images once"),
    Option("tile", "int", 256, minimum=32),
    Option("batch", "int", 8, minimum=1),
    Option("validation", "float", 0.1),
    Option("channel", "int", 0, minimum=0),
    Option("invert", "flag", False),
    Option("corrected", "flag", False, help="only Tissue Analyzer masks corrected by hand"),
    Option("resume", "flag", False),
    Option("overwrite", "flag", False),
)


# --------------------------------------------------------------------------------------------------- Segment


def segment(request: Request, service: Service) -> Reply:
    """Segment the current image (or ``request.image``), or every image of ``folder=[...]``."""
    imp = request.image if request.image is not None else _current_image()
    values = _options(request, service, SEGMENT, SEGMENT_OPTIONS, lambda: _segment_dialog(imp, service))
    engine_options = _engine_options(values)
    if values["folder"]:
        return _segment_folder(values, engine_options, service)
    if imp is None:
        raise InputError("no image is open: open an image first, or segment a folder with folder=[...]")
    _check_size(imp)
    channel = _channel(imp, values["channel"])
    outputs = values["output"]
    if not outputs:
        raise InputError(f"{SEGMENT}: choose at least one output ({' '.join(OUTPUTS)})")
    source = _source_file(imp)
    save = _writable_folder(values["save"]) if values["save"] else None
    if save is not None and not values["overwrite"]:
        _check_new_files(save, _stem(imp), outputs)
    if "ta" in outputs:
        _check_ta(source, values["overwrite"])
    array, axes = convert.to_numpy(imp, channel)
    model = _model(values["model"], service)
    result = service.compute(_segment_array, array, axes, model, engine_options, what=f"{SEGMENT} {imp.getTitle()}")
    return _segment_reply(imp, result, values, source, save, model, request, service)


def _segment_array(array, axes, model, engine_options, progress):
    from ..pipeline import segment as engine_segment

    return engine_segment(array, model, axes=axes, progress=progress, **engine_options)


def _engine_options(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "invert": values["invert"],
        "normalization": None if values["normalization"] == "model" else values["normalization"],
        "tile": values["tile"] or None,
        "overlap": values["overlap"] or None,
        "batch": values["batch"],
        "tta": values["tta"],
        "min_size": values["minimum"],
    }


def _segment_reply(imp, result, values, source, save, model, request, service) -> Reply:
    outputs = values["output"]
    calibration = convert.calibration_of(imp)
    stem = _stem(imp)
    objects: dict[str, Any] = {"cells": int(sum(result.n_cells))}
    labels_imp = None
    if {"labels", "rois", "results"} & set(outputs):
        labels_imp = _labels_imageplus(result.labels, result.axes, f"{stem}-labels", calibration)
    rois = None
    if {"rois", "results"} & set(outputs):
        rois = stack_rois(result.labels, result.axes, labels_imp)
    if "labels" in outputs:
        objects["labels"] = labels_imp
    if "outlines" in outputs:
        objects["outlines"] = convert.to_imageplus(
            result.outlines, result.axes, title=f"{stem}-outlines", calibration=calibration
        )
    if "bonds" in outputs:
        objects["bonds"] = convert.to_imageplus(
            result.bonds, result.axes, title=f"{stem}-bonds", calibration=calibration
        )
    if "rois" in outputs:
        objects["rois"] = _roi_array(rois)
    table = None
    if "results" in outputs:
        table = cell_results(result.labels, result.axes, rois, labels_imp)
        objects["results"] = convert.table_to_results(table)
    if "ta" in outputs:
        from .. import io

        written = io.write_ta_mask(
            source,
            result.outlines,
            overwrite=values["overwrite"],
            spacing=calibration.spacing if calibration.scaled else None,
            unit=calibration.unit if calibration.scaled else None,
            provenance={"model": getattr(model, "name", str(model)), "image": source.name},
        )
        if not written.written:
            raise InputError(written.message)
        objects["ta"] = str(written.path)
    if save is not None:
        objects.update(_save_files(save, stem, objects, rois, values["overwrite"]))
    elif rois is not None and "rois" in outputs and request.display and service.headless and source is not None:
        roi_set = _result_files(source.parent, stem)["rois"]  # headless, the ROIs go beside the image...
        if values["overwrite"] or not roi_set.exists():
            objects.update(_save_files(source.parent, stem, {"rois": True}, rois, True))
        else:  # ...but never over a RoiSet that is already there
            _log(f"EPySeg: {roi_set} exists: kept (add 'overwrite', or save=[folder], to write the ROIs)")
    if request.display:
        _display(objects, rois, table, service)
    return Reply(str(objects["cells"]), objects)


def _segment_folder(values, engine_options, service: Service) -> Reply:
    from .. import batch

    folder = Path(values["folder"]).expanduser()
    if not folder.is_dir():
        raise InputError(f"folder not found: {folder}")
    paths = batch.find_images([folder])
    out_dir = _writable_folder(values["save"]) if values["save"] else None
    if out_dir is None:
        _writable_folder(str(folder))  # the TA folders go beside the images
    channel = values["channel"] - 1 if values["channel"] else None
    model = _model(values["model"], service)

    def run(progress):
        from ij import IJ

        def on_file(report):
            detail = f"{report.n_cells} cells, {report.seconds:.1f} s" if report.status == "written" else report.message
            IJ.log(f"EPySeg: {report.path.name}: {report.status} ({detail})")

        return batch.segment_files(
            paths, model=model, ta=out_dir is None, out_dir=out_dir, overwrite=values["overwrite"],
            on_file=on_file, progress=progress, channel=channel, **engine_options,
        )  # fmt: skip

    reports = service.compute(run, what=f"{SEGMENT} {folder.name}")
    counts = {s: sum(r.status == s for r in reports) for s in ("written", "skipped", "failed")}
    summary = f"{counts['written']} written, {counts['skipped']} skipped, {counts['failed']} failed"
    _log(f"EPySeg: {folder}: {summary}")
    return Reply(summary, {"written": counts["written"], "skipped": counts["skipped"], "failed": counts["failed"]})


def _segment_dialog(imp, service: Service) -> str:
    """The GUI dialog; its field labels start with the option keys, so the Recorder writes parseable options."""
    from ij.gui import GenericDialog

    from .. import models

    names = [m.name for m in models.list_models() if m.available] + sorted(service.models)
    gd = GenericDialog(SEGMENT)
    gd.addChoice("Model", names, "default" if "default" in names else names[0])
    if imp is None:
        gd.addDirectoryField("Folder (segment all its images)", "")
    elif _n_channels(imp) > 1:
        gd.addNumericField("Channel (membranes)", 1, 0)
    gd.addCheckbox("Invert (dark membranes on bright background)", False)
    gd.addChoice("Normalization", ["model", "minmax", "percentile"], "model")
    gd.addChoice("TTA (test-time augmentation)", ["none", "flip", "epyseg"], "none")
    gd.addNumericField("Tile size (px, 0 = model's)", 0, 0)
    gd.addNumericField("Overlap (px, 0 = model's)", 0, 0)
    gd.addNumericField("Batch (tiles per step)", 8, 0)
    gd.addNumericField("Minimum cell size (px)", 0, 0)
    if imp is not None:
        defaults = [o in ("labels", "rois", "results") for o in OUTPUTS]
        gd.addCheckboxGroup(2, 3, list(OUTPUTS), defaults, ["Outputs"])
    gd.addDirectoryField("Save results to (optional)", "")
    gd.addCheckbox("Overwrite existing results", False)
    gd.showDialog()
    if gd.wasCanceled():
        raise Cancelled(f"{SEGMENT} cancelled")
    values: dict[str, Any] = {"model": str(gd.getNextChoice())}
    if imp is None:
        values["folder"] = str(gd.getNextString())
    elif _n_channels(imp) > 1:
        values["channel"] = int(gd.getNextNumber())
    values["invert"] = bool(gd.getNextBoolean())
    values["normalization"] = str(gd.getNextChoice())
    values["tta"] = str(gd.getNextChoice())
    for key in ("tile", "overlap", "batch", "minimum"):
        values[key] = int(gd.getNextNumber())
    if imp is not None:
        values["output"] = tuple(o for o in OUTPUTS if gd.getNextBoolean())
        if not values["output"]:
            raise InputError(f"{SEGMENT}: choose at least one output")
    values["save"] = str(gd.getNextString())
    values["overwrite"] = bool(gd.getNextBoolean())
    return format_options(values, SEGMENT_OPTIONS) or " "


# --------------------------------------------------------------------------------------------------- Measure


def measure_cells(request: Request, service: Service) -> Reply:
    """ROIs and per-cell measurements of a label image (16/32-bit) or a TA outline mask (8-bit, 255 = boundary)."""
    values = _options(request, service, MEASURE, MEASURE_OPTIONS, None)
    imp = request.image if request.image is not None else _current_image()
    if imp is None:
        raise InputError("no image is open: open a label image or a Tissue Analyzer outline mask first")
    array, axes = convert.to_numpy(imp)
    if int(imp.getBitDepth()) == 24 or "C" in axes:
        raise InputError(f"{MEASURE} needs a label image or an outline mask, not a colour/multichannel image")
    if values["save"] and not values["overwrite"]:
        _check_new_files(_writable_folder(values["save"]), _stem(imp), values["output"])
    labels = service.compute(_as_labels, array, axes, what=MEASURE)
    calibration = convert.calibration_of(imp)
    labels_imp = _labels_imageplus(labels, axes, f"{_stem(imp)}-labels", calibration)
    rois = stack_rois(labels, axes, labels_imp)
    objects: dict[str, Any] = {"cells": sum(len(plane) for plane in rois)}
    if "rois" in values["output"]:
        objects["rois"] = _roi_array(rois)
    table = None
    if "results" in values["output"]:
        table = cell_results(labels, axes, rois, labels_imp)
        objects["results"] = convert.table_to_results(table)
    if values["save"]:
        objects.update(_save_files(_writable_folder(values["save"]), _stem(imp), objects, rois, values["overwrite"]))
    if request.display:
        if service.headless and "rois" in values["output"]:
            imp.setOverlay(convert.rois_to_overlay([roi for plane in rois for roi in plane]))
        _display(objects, rois, table, service)
    return Reply(str(objects["cells"]), objects)


def _as_labels(array: np.ndarray, axes: str, progress) -> np.ndarray:
    from ..postprocess import labels_from_outlines

    if array.dtype == np.uint8:
        if not set(np.unique(array).tolist()) <= {0, 255}:
            raise InputError("an 8-bit image must be an outline mask (0 and 255 only) to be measured")
        planes = array.reshape(-1, *array.shape[-2:])
        out = [labels_from_outlines(p) for p in planes]
        dtype = np.uint32 if any(o.dtype == np.uint32 for o in out) else np.uint16
        return np.stack([o.astype(dtype) for o in out]).reshape(array.shape)
    if array.dtype == np.float32:
        if not np.array_equal(array, np.round(array)) or array.min() < 0:
            raise InputError("a 32-bit image must hold whole, non-negative labels to be measured")
        return array.astype(np.uint32)
    return array


# ----------------------------------------------------------------------------------------------------- Train


def train(request: Request, service: Service) -> Reply:
    """Train or fine-tune a model on Tissue Analyzer folders; ImageJ's progress bar, Esc cancels."""
    values = _options(request, service, TRAIN, TRAIN_OPTIONS, lambda: _train_dialog(service))
    try:
        from ..training import train as engine_train
    except ImportError:
        raise EpysegError(f"{TRAIN}: training is not available in this version of epyseg-ij") from None
    folders = [f.strip() for f in values["data"].split(";") if f.strip()]
    if not folders:
        raise InputError(f"{TRAIN}: give the training folders: data=[/path/one;/path/two]")
    if not values["name"]:
        raise InputError(f"{TRAIN}: give the new model a name: name=my-model")
    if not 0 <= values["validation"] < 1:
        raise InputError(f"{TRAIN}: validation={values['validation']} must be between 0 and 1")

    def run(progress):
        from ij import IJ

        def on_epoch(report):
            IJ.log(f"EPySeg: {values['name']}: {report.summary()}")

        return engine_train(
            folders, values["name"], base=values["from"] or None, encoder=values["encoder"],
            epochs=values["epochs"], tile=values["tile"], batch=values["batch"],
            steps_per_epoch=values["steps"] or None, val_fraction=values["validation"],
            channel=values["channel"] - 1 if values["channel"] else None, invert=values["invert"],
            corrected_only=values["corrected"], overwrite=values["overwrite"], resume=values["resume"],
            on_epoch=on_epoch, on_step=progress.show, cancel=service.cancel_requested,
        )  # fmt: skip

    result = service.compute(run, what=f"{TRAIN} {values['name']}: step")
    message = f"model {values['name']!r} saved to {result.path} (best epoch {result.best_epoch})"
    _log(f"EPySeg: {message}")
    return Reply(str(result.path), {"path": str(result.path), "best_epoch": int(result.best_epoch)})


def _train_dialog(service: Service) -> str:
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
        "epochs": int(gd.getNextNumber()),
        "tile": int(gd.getNextNumber()),
        "batch": int(gd.getNextNumber()),
        "corrected": bool(gd.getNextBoolean()),
        "overwrite": bool(gd.getNextBoolean()),
    }
    return format_options(values, TRAIN_OPTIONS) or " "


# ---------------------------------------------------------------------------------------- Models, About, misc


def list_models(request: Request, service: Service) -> Reply:
    """The models known by name, one per line: ``name<TAB>kind<TAB>ready|missing<TAB>description``."""
    _options(request, service, "EPySeg Models", (), None)
    from .. import models

    lines = [
        f"{m.name}\t{m.kind}\t{'ready' if m.available else 'missing'}\t{m.description}" for m in models.list_models()
    ]
    lines += [f"{name}\tsession\tready\tregistered from Python" for name in sorted(service.models)]
    if request.display:
        _log("EPySeg models:\n" + "\n".join("  " + line.replace("\t", "  ") for line in lines))
    return Reply("\n".join(lines))


def about(request: Request, service: Service) -> Reply:
    """Versions of epyseg-ij, ImageJ, Python and TensorFlow."""
    _options(request, service, "About EPySeg", (), None)
    text = version_text(service)
    if request.display:
        if service.headless:
            _log(text)
        else:
            from ij import IJ

            IJ.showMessage("About EPySeg", text)
    return Reply(text)


def version_text(service: Service) -> str:
    import sys
    from importlib.metadata import PackageNotFoundError, version

    from ij import IJ

    try:
        tf_version = version("tensorflow-cpu")
    except PackageNotFoundError:
        try:
            tf_version = version("tensorflow")
        except PackageNotFoundError:
            tf_version = "not installed"
    return (
        f"epyseg-ij {__version__}: EPySeg-style segmentation of epithelia\n"
        f"ImageJ {IJ.getFullVersion()} ({'headless' if service.headless else 'GUI'}), "
        f"Python {sys.version.split()[0]}, TensorFlow {tf_version}"
    )


def ping(request: Request, service: Service) -> Reply:
    return Reply("pong")


def cancel(request: Request, service: Service) -> Reply:
    service.cancel()
    return Reply("cancelling" if service.busy else "idle")


def status(request: Request, service: Service) -> Reply:
    return Reply(service.status)


def last_error(request: Request, service: Service) -> Reply:
    return Reply(service.last_error or "")


COMMANDS = {
    "segment": segment,
    "measure": measure_cells,
    "train": train,
    "models": list_models,
    "about": about,
    "version": about,
    "ping": ping,
    "cancel": cancel,
    "status": status,
    "last_error": last_error,
}


# -------------------------------------------------------------------------------------------- shared helpers


def _options(request: Request, service: Service, command: str, spec, dialog) -> dict[str, Any]:
    """Options from the macro; from a dialog when a GUI user runs the command without options."""
    text = request.options
    if text is None and not service.headless and dialog is not None:
        text = dialog()
    return parse(text, spec, command)


def _current_image():
    from ij import WindowManager

    return WindowManager.getCurrentImage()  # the batch-mode image of this macro's thread, or the front window


def _check_size(imp) -> None:
    width, height = int(imp.getWidth()), int(imp.getHeight())
    if width < MIN_SIDE or height < MIN_SIDE:
        raise InputError(f"image too small: {width}×{height} px; EPySeg needs at least {MIN_SIDE}×{MIN_SIDE} px")


def _n_channels(imp) -> int:
    return 3 if int(imp.getBitDepth()) == 24 else int(imp.getNChannels())


def _channel(imp, channel: int) -> int | None:
    """The 0-based channel to segment; RGB and multichannel images need ``channel=`` (1-based)."""
    n = _n_channels(imp)
    if channel == 0:
        if n > 1:
            kind = "an RGB image" if int(imp.getBitDepth()) == 24 else f"a {n}-channel image"
            raise InputError(f"{kind}: choose the membrane channel with channel=1..{n}")
        return None
    if channel > n:
        raise InputError(f"channel={channel} does not exist: the image has {n} channel(s)")
    return channel - 1


def _model(name: str, service: Service):
    return service.models.get(name, name)


def _stem(imp) -> str:
    title = str(imp.getTitle())
    stem, ext = os.path.splitext(title)
    return stem if ext.lower() in (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".lsm", ".czi") else title


def _source_file(imp) -> Path | None:
    info = imp.getOriginalFileInfo()
    if info is None or not info.directory or not info.fileName:
        return None
    path = Path(str(info.directory)) / str(info.fileName)
    return path if path.is_file() else None


def _check_ta(source: Path | None, overwrite: bool) -> None:
    from .. import io

    if source is None:
        raise InputError("the 'ta' output needs an image opened from a file (save it first, or use folder=[...])")
    _writable_folder(str(source.parent))
    refusal = io.ta_refusal(io.ta_mask_path(source), overwrite)
    if refusal:
        raise InputError(refusal)


def _writable_folder(folder: str) -> Path:
    """The folder, created if needed, after checking that a file can be written there."""
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise InputError(f"cannot write to the output folder {path}: {error.strerror or error}") from None
    return path


def _labels_imageplus(labels: np.ndarray, axes: str, title: str, calibration):
    imp = convert.to_imageplus(labels, axes, title=title, calibration=calibration)
    top = max(int(labels.max()) if labels.size else 0, 1)
    imp.setLut(glasbey_lut())
    imp.setDisplayRange(0, top)
    return imp


def glasbey_lut():
    """A LUT of 255 well-separated colours after black, for label images (golden-ratio hues, varied brightness)."""
    from ij.process import LUT
    from jpype import JArray, JByte

    rgb = np.zeros((256, 3), np.uint8)
    for i in range(1, 256):
        hue = (i * 0.618033988749895) % 1.0
        saturation = (0.55, 0.8, 1.0)[i % 3]
        value = (1.0, 0.75, 0.9)[(i // 3) % 3]
        rgb[i] = np.round(np.array(colorsys.hsv_to_rgb(hue, saturation, value)) * 255)
    channels = [JArray(JByte)(rgb[:, k].view(np.int8).copy()) for k in range(3)]
    return LUT(*channels)


def _planes(array: np.ndarray, axes: str):
    """(index in the stack, (z, t) 1-based, 2D plane) for each plane of a ``[T][Z]YX`` array."""
    nt = array.shape[axes.index("T")] if "T" in axes else 1
    nz = array.shape[axes.index("Z")] if "Z" in axes else 1
    planes = array.reshape(nt, nz, *array.shape[-2:])
    for t in range(nt):
        for z in range(nz):
            yield t * nz + z + 1, (z + 1, t + 1), planes[t, z]


def stack_rois(labels: np.ndarray, axes: str, labels_imp=None) -> list[list]:
    """ROIs of every plane of a label image or stack (one list per plane), positioned in the stack."""
    hyper = "Z" in axes and "T" in axes
    stacked = len(axes) > 2
    rois = []
    for index, (z, t), plane in _planes(labels, axes):
        position = (0, z, t) if hyper else index if stacked else None
        names = f"{index:04d}-{{label:05d}}" if stacked else "{label:05d}"
        rois.append(convert.labels_to_rois(plane, position=position, names=names))
    return rois


def cell_results(labels: np.ndarray, axes: str, rois: list[list], labels_imp) -> dict[str, np.ndarray]:
    """Per-cell table of a label image or stack: Label, Area, Perim., X, Y, Neighbours (+ Slice, Frame)."""
    calibration = convert.calibration_of(labels_imp)
    tables = []
    for (_, (z, t), plane), plane_rois in zip(_planes(labels, axes), rois, strict=True):
        table = measure.cell_table(
            plane.astype(np.int64) if plane.dtype.kind == "f" else plane,
            spacing=calibration.spacing,
            origin=(calibration.y_origin, calibration.x_origin),
        )
        ordered = {"Label": table["Label"], "Area": table["Area"], "Perim.": convert.perimeters(plane_rois, labels_imp)}
        ordered.update(X=table["X"], Y=table["Y"], Neighbours=table["Neighbours"])
        if "Z" in axes:
            ordered["Slice"] = np.full(len(table["Label"]), z)
        if "T" in axes:
            ordered["Frame"] = np.full(len(table["Label"]), t)
        tables.append(ordered)
    return {key: np.concatenate([t[key] for t in tables]) for key in tables[0]} if tables else {}


def _roi_array(rois: list[list]):
    from ij.gui import Roi
    from jpype import JArray

    return JArray(Roi)([roi for plane in rois for roi in plane])


def _result_files(folder: Path, stem: str) -> dict[str, Path]:
    """Where ``save=[folder]`` puts each output."""
    return {
        "labels": folder / f"{stem}_labels.tif",
        "outlines": folder / f"{stem}_outlines.tif",
        "bonds": folder / f"{stem}_bonds.tif",
        "rois": folder / f"{stem}_RoiSet.zip",
        "results": folder / f"{stem}_results.csv",
    }


def _check_new_files(folder: Path, stem: str, outputs) -> None:
    """Refuse, before any work, to replace result files without ``overwrite``."""
    for key, path in _result_files(folder, stem).items():
        if key in outputs and path.exists():
            raise InputError(f"{path} exists: add 'overwrite' to replace it")


def _save_files(folder: Path, stem: str, objects: dict[str, Any], rois, overwrite: bool) -> dict[str, str]:
    """Write the chosen results into ``folder``: TIFFs, RoiSet .zip, results CSV (each atomically)."""
    written = {}
    for key, path in _result_files(folder, stem).items():
        if key not in objects:
            continue
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists: add 'overwrite' to replace it")
        if key == "rois":
            convert.rois_to_zip([roi for plane in rois for roi in plane], path)
        elif key == "results":
            _save_csv(objects["results"], path)
        else:
            _save_tiff(objects[key], path)
        written[f"{key}_file"] = str(path)
        log.info("wrote %s", path)
    return written


def _save_tiff(imp, path: Path) -> None:
    from ij.io import FileSaver

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        saver = FileSaver(imp)
        ok = saver.saveAsTiffStack(str(tmp)) if int(imp.getStackSize()) > 1 else saver.saveAsTiff(str(tmp))
        if not ok:
            raise InputError(f"cannot write {path}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_csv(rt, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if not rt.save(str(tmp)):
            raise InputError(f"cannot write {path}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _display(objects: dict[str, Any], rois, table, service: Service) -> None:
    """Show images, ROIs (ROI Manager in the GUI, overlay headless) and the Results table, as ImageJ does."""
    labels = objects.get("labels")
    if labels is not None and service.headless and rois is not None and "rois" in objects:
        labels.setOverlay(convert.rois_to_overlay([roi for plane in rois for roi in plane]))
    if "rois" in objects and not service.headless:
        manager = _roi_manager()
        manager.reset()
        for roi in objects["rois"]:
            manager.addRoi(roi)
    if "results" in objects:  # the system table, so that macros read it with nResults and getResult
        from ij.plugin.filter import Analyzer

        system = Analyzer.getResultsTable()
        convert.table_to_results(table, system)
        system.show("Results")
        objects["results"] = system
    for key in ("bonds", "outlines", "labels"):  # labels last: it becomes the current image
        if objects.get(key) is not None:
            _show(objects[key], service)


def _roi_manager():
    """The ROI Manager a macro on this thread sees (a hidden one in batch mode), or the visible one."""
    from ij import IJ
    from ij.macro import Interpreter
    from ij.plugin.frame import RoiManager

    if IJ.isMacro() and not Interpreter.isBatchMode() and RoiManager.getRawInstance() is None:
        IJ.run("ROI Manager...", "")  # as the macro function roiManager() does: a window that outlives the macro
    return RoiManager.getInstance() or RoiManager.getRoiManager()


def _show(imp, service: Service) -> None:
    """Display an image; in batch mode (always, headless) it becomes the current image of this macro's thread."""
    from ij import WindowManager
    from ij.macro import Interpreter

    if Interpreter.isBatchMode() or not service.headless:
        imp.show()
    else:
        WindowManager.setTempCurrentImage(imp)


def _log(text: str) -> None:
    from ij import IJ

    IJ.log(text)
