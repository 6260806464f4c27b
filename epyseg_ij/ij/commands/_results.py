"""What the commands give back: label images, ROIs per cell, the per-cell table, result files, and their display.

Headless, each thread has its own system Results table (``epyseg.bridge.ThreadResults``): a macro reads its own
rows with ``nResults`` even when other macros run at the same time.
"""

from __future__ import annotations

import colorsys
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from .. import convert, measure
from ..service import Service

log = logging.getLogger(__name__)


def labels_imageplus(labels: np.ndarray, axes: str, title: str, calibration):
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


def roi_array(rois: list[list]):
    from ij.gui import Roi
    from jpype import JArray

    return JArray(Roi)([roi for plane in rois for roi in plane])


def result_files(folder: Path, stem: str) -> dict[str, Path]:
    """Where ``save=[folder]`` puts each output."""
    return {
        "labels": folder / f"{stem}_labels.tif",
        "outlines": folder / f"{stem}_outlines.tif",
        "bonds": folder / f"{stem}_bonds.tif",
        "rois": folder / f"{stem}_RoiSet.zip",
        "results": folder / f"{stem}_results.csv",
    }


def check_new_files(folder: Path, stem: str, outputs) -> None:
    """Refuse, before any work, to replace result files without ``overwrite``."""
    for key, path in result_files(folder, stem).items():
        if key in outputs and path.exists():
            raise InputError(f"{path} exists: add 'overwrite' to replace it")


def save_files(folder: Path, stem: str, objects: dict[str, Any], rois, overwrite: bool) -> dict[str, str]:
    """Write the chosen results into ``folder``: TIFFs, RoiSet .zip, results CSV (each atomically)."""
    written = {}
    for key, path in result_files(folder, stem).items():
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


def display(objects: dict[str, Any], rois, table, service: Service) -> None:
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
