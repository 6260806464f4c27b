"""What the commands give back: label images, ROIs per cell, the per-cell table, result files, and their display.

Headless, each thread has its own system Results table (``epyseg.bridge.ThreadResults``): a macro reads its own
rows with ``nResults`` even when other macros run at the same time.
"""

from __future__ import annotations

import colorsys
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ... import measure, roiset
from ...errors import InputError
from .. import convert
from ..service import Service

log = logging.getLogger(__name__)


def labels_imageplus(labels: np.ndarray, axes: str, title: str, calibration):
    imp = convert.to_imageplus(labels, axes, title=unique_title(title), calibration=calibration)
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


def unique_title(title: str) -> str:
    """The title, or ``title-1``, ``title-2``... when an open image (a batch-mode one too) has it already."""
    from ij import WindowManager

    return str(WindowManager.getUniqueName(title)) if WindowManager.getImage(title) is not None else title


@dataclass
class Cells:
    """The cells of a label image or stack (``[T][Z]YX``), traced once for every output: ROIs, table, RoiSet."""

    labels: np.ndarray
    axes: str
    calibration: convert.Calibration
    outlines: list[list[measure.Outline]]  # per plane; without the border cells when they are left out

    @classmethod
    def of(cls, labels: np.ndarray, axes: str, calibration: convert.Calibration, exclude_border: bool = False,
           progress=None):  # fmt: skip
        return cls(labels, axes, calibration, measure.plane_outlines(labels, axes, exclude_border, progress))

    @property
    def count(self) -> int:
        return sum(len(plane) for plane in self.outlines)

    def rois(self) -> list[list]:
        """ImageJ ROIs of every plane (one list per plane), named and positioned in the stack."""
        pattern, stacked, hyper = roiset.stack_names(self.axes)
        rois = []
        for (index, (z, t), _), plane in zip(measure.planes(self.labels, self.axes), self.outlines, strict=True):
            position = (0, z, t) if hyper else index if stacked else None
            names = pattern.replace("{index:04d}", f"{index:04d}")
            rois.append(convert.outlines_to_rois(plane, position=position, names=names))
        return rois

    def table(self) -> dict[str, np.ndarray]:
        """The per-cell table: Label, Area, Perim., X, Y, Neighbours (+ Slice, Frame), in calibrated units."""
        cal = self.calibration
        origin = (cal.y_origin, cal.x_origin)
        return measure.results(self.labels, self.axes, cal.spacing, origin, outlines_per_plane=self.outlines)

    def write_rois(self, path: Path, overwrite: bool) -> None:
        roiset.write(path, roiset.cell_rois(self.labels, self.axes, self.outlines), overwrite)


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


def save_files(folder: Path, stem: str, objects: dict[str, Any], cells: Cells | None, table, overwrite: bool):
    """Write the chosen results into ``folder``: TIFFs, RoiSet .zip, results CSV with units (each atomically)."""
    written = {}
    for key, path in result_files(folder, stem).items():
        if key not in objects:
            continue
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists: add 'overwrite' to replace it")
        if key == "rois":
            cells.write_rois(path, overwrite=True)
        elif key == "results":
            measure.write_csv(path, table, cells.calibration.unit, overwrite=True)
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


def display(objects: dict[str, Any], rois, table, service: Service, keep=None) -> None:
    """Show images, ROIs (ROI Manager in the GUI, overlay headless) and the Results table, as ImageJ does; the image
    ``keep`` (the one the command worked on) stays the current image, so the macro's next command works on it."""
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
    for key in ("bonds", "outlines", "labels"):
        if objects.get(key) is not None:
            _show(objects[key], service)
    if keep is not None:
        _activate(keep)


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


def _activate(imp) -> None:
    """Make an image the current one again: its window in the GUI, else this thread's current (batch-mode) image."""
    from ij import WindowManager

    window = imp.getWindow()
    if window is not None:
        WindowManager.setCurrentWindow(window)
        window.toFront()
    else:
        WindowManager.setTempCurrentImage(imp)
