"""EPySeg Segment: the current image (2D to 5D, any bit depth) or every image of a folder.

run("EPySeg Segment", "model=default tta=none channel=1 backend=auto output=[labels outlines rois results]");
run("EPySeg Segment", "folder=[/data/movie] model=default");
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import Cancelled, InputError
from .. import convert
from ..options import Option, format_options
from ..service import Reply, Request, Service, command
from ._common import (
    channel_index,
    check_size,
    current_image,
    dialog_number,
    log,
    n_channels,
    options,
    source_file,
    stem,
    writable_folder,
)
from ._results import (
    cell_results,
    check_new_files,
    display,
    labels_imageplus,
    result_files,
    roi_array,
    save_files,
    stack_rois,
)

OUTPUTS = ("labels", "outlines", "bonds", "rois", "results", "ta")
SEGMENT = "EPySeg Segment"
SEGMENT_OPTIONS = (
    Option("model", "str", "default", help="model name or .h5 path"),
    Option("channel", "int", 0, minimum=0, maximum=999, help="membrane channel, from 1 (multichannel, RGB)"),
    Option("invert", "flag", False, help="dark membranes on a bright background"),
    Option("normalization", "choice", "model", ("model", "minmax", "percentile")),
    Option("tta", "choice", "none", ("none", "flip", "epyseg")),
    Option("tile", "int", 0, minimum=0, help="tile size in px, 0 = the model's"),
    Option("overlap", "int", 0, minimum=0, help="context between tiles in px, 0 = the model's"),
    Option("batch", "int", 8, minimum=1, help="tiles per network call"),
    Option("minimum", "int", 0, minimum=0, help="merge cells smaller than this (px)"),
    Option("backend", "choice", "auto", ("auto", "tensorflow", "openvino"), help="where the network runs"),
    Option("output", "words", ("labels", "rois", "results"), OUTPUTS),
    Option("folder", "path", "", help="segment every image of this folder (TA layout) instead of the current one"),
    Option("save", "path", "", help="folder for the result files"),
    Option("overwrite", "flag", False, help="replace existing results (never a hand-corrected TA mask)"),
)


@command("segment")
def segment(request: Request, service: Service) -> Reply:
    """Segment the current image (or ``request.image``), or every image of ``folder=[...]``."""
    imp = request.image if request.image is not None else current_image()
    values = options(request, service, SEGMENT, SEGMENT_OPTIONS, lambda: _dialog(imp, service))
    if values["folder"]:
        return _segment_folder(values, service)
    if imp is None:
        raise InputError("no image is open: open an image first, or segment a folder with folder=[...]")
    check_size(imp)
    channel = channel_index(imp, values["channel"])
    if not values["output"]:
        raise InputError(f"{SEGMENT}: choose at least one output ({' '.join(OUTPUTS)})")
    source = source_file(imp)
    save = writable_folder(values["save"]) if values["save"] else None
    if save is not None and not values["overwrite"]:
        check_new_files(save, stem(imp), values["output"])
    if "ta" in values["output"]:
        _check_ta(source, values["overwrite"])
    array, axes = convert.to_numpy(imp, channel)
    model = _model(values["model"], service)
    what = f"{SEGMENT} {imp.getTitle()}"
    result = service.compute(_segment_array, array, axes, model, _engine_options(values), what=what)
    return _reply(imp, result, values, source, save, model, request, service)


def _segment_array(array, axes, model, engine_options, progress):
    from ...pipeline import segment as engine_segment

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
        "backend": values["backend"],
    }


def _model(name: str, service: Service):
    return service.models.get(name, name)


def _reply(imp, result, values, source, save, model, request, service) -> Reply:
    outputs = values["output"]
    name = stem(imp)
    objects, rois, table = _results(imp, result, outputs)
    if "ta" in outputs:
        objects["ta"] = _write_ta(source, result.outlines, imp, model, values["overwrite"])
    if save is not None:
        objects.update(save_files(save, name, objects, rois, values["overwrite"]))
    elif "rois" in outputs and request.display and service.headless and source is not None:
        objects.update(_roi_set_beside(source, name, rois, values["overwrite"]))
    if request.display:
        display(objects, rois, table, service)
    return Reply(str(objects["cells"]), objects)


def _results(imp, result, outputs) -> tuple[dict[str, Any], list | None, dict | None]:
    """The chosen outputs as ImageJ objects, the ROIs per plane and the per-cell table."""
    calibration = convert.calibration_of(imp)
    name = stem(imp)
    objects: dict[str, Any] = {"cells": int(sum(result.n_cells))}
    labels_imp = rois = table = None
    if {"labels", "rois", "results"} & set(outputs):
        labels_imp = labels_imageplus(result.labels, result.axes, f"{name}-labels", calibration)
    if {"rois", "results"} & set(outputs):
        rois = stack_rois(result.labels, result.axes, labels_imp)
    if "labels" in outputs:
        objects["labels"] = labels_imp
    for key in ("outlines", "bonds"):
        if key in outputs:
            array = getattr(result, key)
            objects[key] = convert.to_imageplus(array, result.axes, title=f"{name}-{key}", calibration=calibration)
    if "rois" in outputs:
        objects["rois"] = roi_array(rois)
    if "results" in outputs:
        table = cell_results(result.labels, result.axes, rois, labels_imp)
        objects["results"] = convert.table_to_results(table)
    return objects, rois, table


def _check_ta(source: Path | None, overwrite: bool) -> None:
    from ... import io

    if source is None:
        raise InputError("the 'ta' output needs an image opened from a file (save it first, or use folder=[...])")
    writable_folder(str(source.parent))
    refusal = io.ta_refusal(io.ta_mask_path(source), overwrite)
    if refusal:
        raise InputError(refusal)


def _write_ta(source: Path, outlines, imp, model, overwrite: bool) -> str:
    from ... import io

    calibration = convert.calibration_of(imp)
    written = io.write_ta_mask(
        source,
        outlines,
        overwrite=overwrite,
        spacing=calibration.spacing if calibration.scaled else None,
        unit=calibration.unit if calibration.scaled else None,
        provenance={"model": getattr(model, "name", str(model)), "image": source.name},
    )
    if not written.written:
        raise InputError(written.message)
    return str(written.path)


def _roi_set_beside(source: Path, name: str, rois, overwrite: bool) -> dict[str, str]:
    """Headless, the ROIs also go to a RoiSet beside the image, but never over one that is already there."""
    roi_set = result_files(source.parent, name)["rois"]
    if overwrite or not roi_set.exists():
        return save_files(source.parent, name, {"rois": True}, rois, True)
    log(f"EPySeg: {roi_set} exists: kept (add 'overwrite', or save=[folder], to write the ROIs)")
    return {}


def _segment_folder(values, service: Service) -> Reply:
    from ... import batch

    folder = Path(values["folder"]).expanduser()
    if not folder.is_dir():
        raise InputError(f"folder not found: {folder}")
    paths = batch.find_images([folder])
    out_dir = writable_folder(values["save"]) if values["save"] else None
    if out_dir is None:
        writable_folder(str(folder))  # the TA folders go beside the images
    channel = values["channel"] - 1 if values["channel"] else None
    model = _model(values["model"], service)
    engine_options = _engine_options(values)

    def run(progress):
        def on_file(report):
            detail = f"{report.n_cells} cells, {report.seconds:.1f} s" if report.status == "written" else report.message
            log(f"EPySeg: {report.path.name}: {report.status} ({detail})")

        return batch.segment_files(
            paths, model=model, ta=out_dir is None, out_dir=out_dir, overwrite=values["overwrite"],
            on_file=on_file, progress=progress, channel=channel, **engine_options,
        )  # fmt: skip

    reports = service.compute(run, what=f"{SEGMENT} {folder.name}")
    counts = {s: sum(r.status == s for r in reports) for s in ("written", "skipped", "failed")}
    summary = f"{counts['written']} written, {counts['skipped']} skipped, {counts['failed']} failed"
    log(f"EPySeg: {folder}: {summary}")
    return Reply(summary, counts)


def _dialog(imp, service: Service) -> str:
    """The GUI dialog; its field labels start with the option keys, so the Recorder writes parseable options."""
    from ij.gui import GenericDialog

    from ... import models

    names = [m.name for m in models.list_models() if m.available] + sorted(service.models)
    gd = GenericDialog(SEGMENT)
    gd.addChoice("Model", names, "default" if "default" in names else names[0])
    if imp is None:
        gd.addDirectoryField("Folder (segment all its images)", "")
    elif n_channels(imp) > 1:
        gd.addNumericField("Channel (membranes)", 1, 0)
    gd.addCheckbox("Invert (dark membranes on bright background)", False)
    gd.addChoice("Normalization", ["model", "minmax", "percentile"], "model")
    gd.addChoice("TTA (test-time augmentation)", ["none", "flip", "epyseg"], "none")
    gd.addNumericField("Tile size (px, 0 = model's)", 0, 0)
    gd.addNumericField("Overlap (px, 0 = model's)", 0, 0)
    gd.addNumericField("Batch (tiles per step)", 8, 0)
    gd.addNumericField("Minimum cell size (px)", 0, 0)
    gd.addChoice("Backend (where the network runs)", ["auto", "tensorflow", "openvino"], "auto")
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
    elif n_channels(imp) > 1:
        values["channel"] = dialog_number(gd)
    values["invert"] = bool(gd.getNextBoolean())
    values["normalization"] = str(gd.getNextChoice())
    values["tta"] = str(gd.getNextChoice())
    for key in ("tile", "overlap", "batch", "minimum"):
        values[key] = dialog_number(gd)
    values["backend"] = str(gd.getNextChoice())
    if imp is not None:
        values["output"] = tuple(o for o in OUTPUTS if gd.getNextBoolean())
    values["save"] = str(gd.getNextString())
    values["overwrite"] = bool(gd.getNextBoolean())
    return format_options(values, SEGMENT_OPTIONS) or " "
