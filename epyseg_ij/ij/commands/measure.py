"""EPySeg Measure: ROIs and per-cell measurements of a label image or a Tissue Analyzer outline mask.

run("EPySeg Measure", "output=[rois results]");
run("EPySeg Measure", "output=[results] exclude save=[/data/tables]");   // without the cells on the border
"""

from __future__ import annotations

from typing import Any

from ... import measure
from ...errors import InputError
from .. import convert
from ..options import Option
from ..service import Reply, Request, Service, command
from ._common import current_image, options, stem, writable_folder
from ._results import Cells, check_new_files, display, roi_array, save_files

MEASURE = "EPySeg Measure"
MEASURE_OPTIONS = (
    Option("output", "words", ("rois", "results"), ("rois", "results")),
    Option("exclude", "flag", False, help="leave out the cells that touch the image border"),
    Option("save", "path", ""),
    Option("overwrite", "flag", False, help="replace existing result files"),
)


@command("measure")
def measure_cells(request: Request, service: Service) -> Reply:
    """ROIs and per-cell measurements of a label image (16/32-bit) or a TA outline mask (8-bit, 255 = boundary)."""
    values = options(request, service, MEASURE, MEASURE_OPTIONS)
    imp = request.image if request.image is not None else current_image()
    if imp is None:
        raise InputError("no image is open: open a label image or a Tissue Analyzer outline mask first")
    array, axes = convert.to_numpy(imp)
    if int(imp.getBitDepth()) == 24 or "C" in axes:
        raise InputError(f"{MEASURE} needs a label image or an outline mask, not a colour/multichannel image")
    save = writable_folder(values["save"]) if values["save"] else None
    if save is not None and not values["overwrite"]:
        check_new_files(save, stem(imp), values["output"])
    calibration = convert.calibration_of(imp)
    cells = service.compute(_cells, array, axes, calibration, values["exclude"], what=MEASURE, unit="planes")
    rois = cells.rois()
    objects: dict[str, Any] = {"cells": cells.count}
    if "rois" in values["output"]:
        objects["rois"] = roi_array(rois)
    table = None
    if "results" in values["output"]:
        table = cells.table()
        objects["results"] = convert.table_to_results(table)
    if save is not None:
        objects.update(save_files(save, stem(imp), objects, cells, table, values["overwrite"]))
    if request.display:
        if service.headless and "rois" in values["output"]:
            imp.setOverlay(convert.rois_to_overlay([roi for plane in rois for roi in plane]))
        display(objects, rois, table, service, keep=imp)
    return Reply(str(objects["cells"]), objects)


def _cells(array, axes: str, calibration, exclude_border: bool, progress) -> Cells:
    """The cells of a label image or outline mask, traced plane by plane (on the worker: it takes a while on big
    stacks; the status bar counts planes, Esc stops between them)."""
    progress.say("reading cells…")
    return Cells.of(measure.as_labels(array), axes, calibration, exclude_border, progress)
