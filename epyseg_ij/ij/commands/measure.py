"""EPySeg Measure: ROIs and per-cell measurements of a label image or a Tissue Analyzer outline mask.

run("EPySeg Measure", "output=[rois results]");
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import InputError
from .. import convert
from ..options import Option
from ..service import Reply, Request, Service, command
from ._common import current_image, options, status, stem, writable_folder
from ._results import cell_results, check_new_files, display, labels_imageplus, roi_array, save_files, stack_rois

MEASURE = "EPySeg Measure"
MEASURE_OPTIONS = (
    Option("output", "words", ("rois", "results"), ("rois", "results")),
    Option("save", "path", ""),
    Option("overwrite", "flag", False, help="replace existing result files"),
)
MAX_LABEL = 2**32 - 1


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
    labels = service.compute(_as_labels, array, axes, what=f"{MEASURE} {imp.getTitle()}", unit="planes")
    status(f"{MEASURE} {imp.getTitle()}: tracing the cells…")
    labels_imp = labels_imageplus(labels, axes, f"{stem(imp)}-labels", convert.calibration_of(imp))
    rois = stack_rois(labels, axes, labels_imp)
    objects: dict[str, Any] = {"cells": sum(len(plane) for plane in rois)}
    if "rois" in values["output"]:
        objects["rois"] = roi_array(rois)
    table = None
    if "results" in values["output"]:
        table = cell_results(labels, axes, rois, labels_imp)
        objects["results"] = convert.table_to_results(table)
    if save is not None:
        objects.update(save_files(save, stem(imp), objects, rois, values["overwrite"]))
    if request.display:
        if service.headless and "rois" in values["output"]:
            imp.setOverlay(convert.rois_to_overlay([roi for plane in rois for roi in plane]))
        display(objects, rois, table, service)
    return Reply(str(objects["cells"]), objects)


def _as_labels(array: np.ndarray, axes: str, progress) -> np.ndarray:
    from ...postprocess import labels_from_outlines

    if array.dtype == np.uint8:
        if not set(np.unique(array).tolist()) <= {0, 255}:
            raise InputError("an 8-bit image must be an outline mask (0 and 255 only) to be measured")
        planes = array.reshape(-1, *array.shape[-2:])
        out = []
        for plane in planes:
            out.append(labels_from_outlines(plane))
            progress(len(out), len(planes))
        dtype = np.uint32 if any(o.dtype == np.uint32 for o in out) else np.uint16
        return np.stack([o.astype(dtype) for o in out]).reshape(array.shape)
    if array.dtype == np.float32:
        whole = np.isfinite(array).all() and np.array_equal(array, np.round(array))
        if not whole or array.min() < 0 or array.max() > MAX_LABEL:
            raise InputError(f"a 32-bit image must hold whole labels from 0 to {MAX_LABEL} to be measured")
        return array.astype(np.uint32)
    return array
