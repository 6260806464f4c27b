"""EPySeg Segment: the current image (2D to 5D, any bit depth) or every image of a folder.

run("EPySeg Segment", "model=default tta=none channel=1 backend=auto output=[labels outlines rois results]");
run("EPySeg Segment", "folder=[/data/movie] model=default");
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import InputError
from .. import convert
from ..dialogs import Form, help_page
from ..options import Option
from ..service import Reply, Request, Service, command
from ._common import (
    channel_index,
    check_size,
    current_image,
    load_model,
    log,
    n_channels,
    options,
    source_file,
    status,
    stem,
    writable_folder,
)
from ._results import Cells, check_new_files, display, labels_imageplus, roi_array, save_files, unique_title

OUTPUTS = ("labels", "outlines", "bonds", "rois", "results", "ta", "overlay")
SEGMENT = "EPySeg Segment"
# What each choice means, in the words of the dialog (short) and of its help page (long).
OUTPUT_WORDS = {
    "labels": "Label image (cell numbers)",
    "outlines": "Outlines (8-bit, 1 px)",
    "bonds": "Boundary probability",
    "rois": "ROIs (one per cell)",
    "results": "Results table",
    "ta": "Tissue Analyzer mask",
    "overlay": "Outlines over this image",
}
OUTPUT_HELP = {
    "labels": "16-bit image, each cell its own number, 0 on the boundaries",
    "outlines": "8-bit image, 255 on the 1-px cell boundaries (Tissue Analyzer's convention)",
    "bonds": "32-bit boundary probability, from 0 to 1: the network's own answer",
    "rois": "one ROI per cell, in the ROI Manager",
    "results": "area, perimeter, centroid and number of neighbours of each cell, in calibrated units",
    "ta": "Tissue Analyzer mask: handCorrection.tif in the image's Tissue Analyzer folder, ready to correct "
    "(a mask you corrected is never replaced)",
    "overlay": "the cell outlines as an overlay on the original image (its calibration kept)",
}
NORMALIZATION_HELP = "how intensities are rescaled to 0-1 for the network; keep the model's unless membranes are missed"
NORMALIZATION_WORDS = {
    "model": "as the model was trained (recommended)",
    "minmax": "min-max: darkest pixel 0, brightest 1",
    "percentile": "percentiles: 2% and 99.8% (a few bright spots ignored)",
}
TTA_WORDS = {
    "none": "none (fastest)",
    "flip": "8 flipped and rotated views, averaged (8x slower)",
    "epyseg": "EPySeg's 13 passes (13x slower)",
}
SEGMENT_OPTIONS = (
    Option("model", "str", "default", help="model name (see EPySeg Models...) or .h5 file"),
    Option("channel", "int", 0, minimum=0, maximum=999, help="membrane channel, from 1 (multichannel, RGB)"),
    Option("invert", "flag", False, help="dark membranes on a bright background"),
    Option("normalization", "choice", "model", ("model", "minmax", "percentile"), help=NORMALIZATION_HELP),
    Option("tta", "choice", "none", ("none", "flip", "epyseg"), help="test-time augmentation: more views, fewer slips"),
    Option("tile", "int", 0, minimum=0, help="the image is segmented in square tiles of this size, 0 = the model's"),
    Option("overlap", "int", 0, minimum=0, help="context shared by neighbouring tiles in px, 0 = the model's"),
    Option("batch", "int", 8, minimum=1, help="tiles per network call (lower it if memory runs out)"),
    Option("minimum", "int", 0, minimum=0, help="merge cells smaller than this (px) into a neighbour"),
    Option("backend", "choice", "auto", ("auto", "tensorflow", "openvino"), help="where the network runs"),
    Option("output", "words", ("labels", "rois", "results"), OUTPUTS, help="what to make"),
    Option("folder", "path", "", help="segment every image of this folder (TA layout) instead of the current one"),
    Option("save", "path", "", help="folder for the result files (none: nothing is written)"),
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
    result = service.compute(_segment_array, array, axes, model, _engine_options(values), what=what, unit="tiles")
    status(f"{what}: {int(sum(result.n_cells))} cells: making the outputs…")
    reply = _reply(imp, result, values, source, save, model, request, service)
    status(f"{what}: {reply.value} cells")
    return reply


def _segment_array(array, axes, model, engine_options, progress):
    from ...pipeline import segment as engine_segment

    network = load_model(model, progress, engine_options["backend"])
    progress.say("running the network…")
    return engine_segment(array, network, axes=axes, progress=progress, **engine_options)


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
    objects, cells, rois, table = _results(imp, result, outputs)
    if "overlay" in outputs:
        objects["overlay"] = _overlay(imp, rois)
        imp.setOverlay(objects["overlay"])
    if "ta" in outputs:
        objects["ta"] = _write_ta(source, result.outlines, imp, model, values["overwrite"])
    if save is not None:  # without save=, nothing is written beside the user's images (but the 'ta' mask)
        objects.update(save_files(save, name, objects, cells, table, values["overwrite"]))
    if request.display:
        display(objects, rois, table, service, keep=imp)
    return Reply(str(objects["cells"]), objects)


def _results(imp, result, outputs) -> tuple[dict[str, Any], Cells | None, list | None, dict | None]:
    """The chosen outputs as ImageJ objects, the cells, their ROIs per plane and the per-cell table."""
    calibration = convert.calibration_of(imp)
    name = stem(imp)
    objects: dict[str, Any] = {"cells": int(sum(result.n_cells))}
    cells = rois = table = None
    if {"rois", "results", "overlay"} & set(outputs):
        cells = Cells.of(result.labels, result.axes, calibration)
        rois = cells.rois()
    if "labels" in outputs:
        objects["labels"] = labels_imageplus(result.labels, result.axes, f"{name}-labels", calibration)
    for key in ("outlines", "bonds"):
        if key in outputs:
            array = getattr(result, key)
            title = unique_title(f"{name}-{key}")
            objects[key] = convert.to_imageplus(array, result.axes, title=title, calibration=calibration)
    if "rois" in outputs:
        objects["rois"] = roi_array(rois)
    if "results" in outputs:
        table = cells.table()
        objects["results"] = convert.table_to_results(table)
    return objects, cells, rois, table


def _overlay(imp, rois: list[list]):
    """The cells' outlines as an Overlay of the segmented image: copies of the ROIs, placed in its stack."""
    from ij.gui import Overlay
    from java.awt import Color

    overlay = Overlay()
    hyperstack, n_slices = bool(imp.isHyperStack()), int(imp.getNSlices())
    for index, plane in enumerate(rois):
        for roi in plane:
            outline = roi.clone()
            outline.setStrokeColor(Color.yellow)
            if hyperstack:  # every channel of the plane's slice and frame
                outline.setPosition(0, index % n_slices + 1, index // n_slices + 1)
            elif len(rois) > 1:
                outline.setPosition(index + 1)
            overlay.add(outline)
    return overlay


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
        done = []

        def on_file(report):
            done.append(report)
            detail = f"{report.n_cells} cells, {report.seconds:.1f} s" if report.status == "written" else report.message
            log(f"EPySeg: {report.path.name}: {report.status} ({detail})")

        def tiles(n: int, total: int) -> None:
            progress(n, total, f"image {len(done) + 1}/{len(paths)}: {n}/{total} tiles")

        network = load_model(model, progress, engine_options["backend"])
        return batch.segment_files(
            paths, model=network, ta=out_dir is None, out_dir=out_dir, overwrite=values["overwrite"],
            on_file=on_file, progress=tiles, channel=channel, **engine_options,
        )  # fmt: skip

    reports = service.compute(run, what=f"{SEGMENT} {folder.name}")
    counts = {s: sum(r.status == s for r in reports) for s in ("written", "skipped", "failed")}
    summary = f"{counts['written']} written, {counts['skipped']} skipped, {counts['failed']} failed"
    log(f"EPySeg: {folder}: {summary}")
    return Reply(summary, counts)


INTRO = (
    "Finds the cells of an epithelium whose cell outlines are stained (e.g. E-cadherin): the current image "
    "(2D, a stack or a time-lapse; one channel of a multichannel image) or every image of a folder. Outputs go to "
    "ImageJ windows, to a folder (<i>Save results to</i>) and, for the <i>Tissue Analyzer mask</i>, into the "
    "image's Tissue Analyzer folder, where you can correct it and then train a better model (EPySeg Train)."
)
REMEMBERED = ("model", "channel", "invert", "normalization", "tta", "tile", "overlap", "batch", "minimum", "output")


def _dialog(imp, service: Service) -> dict[str, Any]:
    """The GUI dialog: the published models are downloaded when chosen; an .h5 file or a folder may be browsed to."""
    from ... import models

    choices = {o.key: o.choices for o in SEGMENT_OPTIONS}
    known = {m.name: m.description + ("" if m.available else ", downloaded when used") for m in models.list_models()}
    known.update({name: "registered from Python" for name in service.models})
    form = Form(SEGMENT, remember=REMEMBERED)
    if imp is not None:
        form.message(f"Segment {imp.getTitle()}, or a whole folder (below).")
    form.choice("model", "Model", {name: f"{name} ({text})" for name, text in known.items()}, models.DEFAULT_MODEL)
    form.text("model_file", "or a model file (.h5)", browse="file")
    if imp is not None and n_channels(imp) > 1:
        form.number("channel", "Membrane channel", 1)
    form.flag("invert", "Dark membranes on a bright background", False)
    form.choice("normalization", "Intensities", NORMALIZATION_WORDS, "model")
    form.message("(rescaled to 0-1 for the network: keep the model's way unless the membranes are missed)")
    form.choice("tta", "Test-time augmentation", TTA_WORDS, "none")
    form.number("tile", "Tile size (0: the model's)", 0, "px")
    form.number("overlap", "Tile overlap (0: the model's)", 0, "px")
    form.number("batch", "Tiles per step", 8)
    form.number("minimum", "Merge cells smaller than", 0, "px")
    form.choice("backend", "Run the network with", {c: c for c in choices["backend"]}, "auto")
    if imp is not None:
        form.words("output", OUTPUT_WORDS, ("labels", "rois", "results"), "Outputs")
    form.text("folder", "Segment a folder instead", browse="folder")
    form.text("save", "Save results to (optional)", browse="folder")
    form.flag("overwrite", "Replace existing results (never a corrected mask)", False)
    words = {"output": OUTPUT_HELP, "normalization": NORMALIZATION_WORDS, "tta": TTA_WORDS}
    form.help(help_page(SEGMENT, INTRO, SEGMENT_OPTIONS, words))
    values = form.show()
    values["model"] = values.pop("model_file") or values["model"]
    return values
