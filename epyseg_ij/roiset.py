"""ImageJ/Fiji RoiSet ``.zip`` files of cell outlines, written with roifile (no JVM).

One ROI per cell: ImageJ's traced ROI (the wand's polygon, ``measure.outlines``), or a composite ROI for a cell with
holes or in pieces. ROIs are named by label (``00042``; ``0003-00042`` in a stack, plane first) and carry their
stack position, as the ImageJ commands give them, so a RoiSet opens in Fiji's ROI Manager with each ROI on its plane.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import roifile

from . import files, measure

SEGMENTS = {"moveto": 0, "lineto": 1, "close": 4}  # java.awt.geom.PathIterator codes, as ImageJ stores shapes


def stack_names(axes: str) -> tuple[str, bool, bool]:
    """The name pattern of the ROIs of a label image with these axes, and whether they carry a stack position and
    a hyperstack (z, t) position."""
    stacked = len(axes) > 2
    return ("{index:04d}-{label:05d}" if stacked else "{label:05d}"), stacked, "Z" in axes and "T" in axes


def cell_rois(labels: np.ndarray, axes: str, outlines=None) -> list[roifile.ImagejRoi]:
    """One ROI per cell of every plane, named and positioned as the ImageJ commands name and position them."""
    pattern, stacked, hyper = stack_names(axes)
    outlines = measure.plane_outlines(labels, axes) if outlines is None else outlines
    rois = []
    for (index, (z, t), _), cells in zip(measure.planes(labels, axes), outlines, strict=True):
        for outline in cells:
            roi = _roi(outline)
            roi.name = pattern.format(index=index, label=outline.label)
            if hyper:
                roi.z_position, roi.t_position = z, t
            elif stacked:
                roi.position = index
            rois.append(roi)
    return rois


def _roi(outline: measure.Outline) -> roifile.ImagejRoi:
    """A traced ROI, or a composite one (several rings, filled even-odd)."""
    every = np.concatenate(outline.rings)
    left, top = (int(v) for v in every.min(axis=0))
    right, bottom = (int(v) for v in every.max(axis=0))
    roi = roifile.ImagejRoi()
    roi.left, roi.top, roi.right, roi.bottom = left, top, right, bottom
    if outline.traced:
        ring = outline.rings[0]
        roi.roitype = roifile.ROI_TYPE.TRACED
        roi.n_coordinates = len(ring)
        roi.integer_coordinates = (ring - (left, top)).astype(np.int32)
    else:
        roi.roitype = roifile.ROI_TYPE.RECT
        path = []
        for ring in outline.rings:
            (x0, y0), rest = ring[0], ring[1:]
            path += [SEGMENTS["moveto"], x0, y0]
            for x, y in rest.tolist():
                path += [SEGMENTS["lineto"], x, y]
            path.append(SEGMENTS["close"])
        roi.multi_coordinates = np.array(path, np.float32)
        roi.shape_roi_size = len(path)
    return roi


def write(path: os.PathLike, rois: list[roifile.ImagejRoi], overwrite: bool = False) -> Path:
    """Write a RoiSet ``.zip`` atomically, with the permissions of any other new file (the umask's).

    Names are made unique (``name-1``...) as ImageJ's ROI Manager makes them; without ``overwrite`` an existing file
    is kept (``InputError``).
    """
    path = Path(path)
    names = unique_names([roi.name for roi in rois])

    def put(fh) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:
            for name, roi in zip(names, rois, strict=True):
                z.writestr(f"{name}.roi", roi.tobytes())

    files.atomic_write(path, put, overwrite=overwrite)
    return path


def unique_names(names: list[str]) -> list[str]:
    """The names, empty ones numbered from 1 and repeated ones suffixed ``-1``, ``-2``..."""
    seen: dict[str, int] = {}
    unique = []
    for i, name in enumerate(names):
        name = name or f"{i + 1:05d}"
        if name in seen:
            seen[name] += 1
            name = f"{name}-{seen[name]}"
        seen.setdefault(name, 0)
        unique.append(name)
    return unique
