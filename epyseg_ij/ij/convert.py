"""Conversions between ImageJ 1.x objects and numpy, in symmetric pairs.

=============================  =============================
numpy / Python                 ImageJ
=============================  =============================
``to_numpy(imp)``              ``to_imageplus(array, axes)``
``calibration_of(imp)``        ``set_calibration(imp, cal)``
``rois_to_labels(rois, ...)``  ``labels_to_rois(labels)``
``rois_from_zip(path)``        ``rois_to_zip(rois, path)``
``results_to_table(rt)``       ``table_to_results(table)``
=============================  =============================

Pixels move through JPype buffers, never Python lists: numpy memory is wrapped as a ``java.nio`` direct buffer and
Java copies between it and the Java array in one bulk ``get``/``put`` (memcpy speed, no intermediate copy, no stale
JPype array views).

Axes use tifffile/ImageJ letters. ImageJ stores a hyperstack as planes in C, Z, T order (channel fastest); numpy
arrays here are ``TZCYX`` with the axes of length 1 left out, so a 2D image is ``YX`` and a z-stack ``ZYX``. RGB
images have a last axis ``C`` of length 3 (red, green, blue).

Requires a running JVM with ImageJ on the class path (``epyseg_ij.ij.start``).
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

HYPERSTACK_AXES = "TZCYX"
MAX_EXACT_FLOAT = 2**24  # integers above this are not exact in a 32-bit ImageJ image


# -------------------------------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """What ImageJ's ``ij.measure.Calibration`` says about pixel size, origin and time, in plain Python."""

    pixel_width: float = 1.0
    pixel_height: float = 1.0
    pixel_depth: float = 1.0
    unit: str = "pixel"
    x_origin: float = 0.0
    y_origin: float = 0.0
    z_origin: float = 0.0
    frame_interval: float = 0.0
    time_unit: str = "sec"

    @property
    def scaled(self) -> bool:
        """True when pixels have a physical size."""
        return self.unit not in ("pixel", "pixels", "")

    @property
    def spacing(self) -> tuple[float, float]:
        """(pixel height, pixel width), as the engine's file functions take it."""
        return (self.pixel_height, self.pixel_width)


def calibration_of(imp) -> Calibration:
    """The spatial and temporal calibration of an ImagePlus."""
    cal = imp.getCalibration()
    return Calibration(
        pixel_width=float(cal.pixelWidth),
        pixel_height=float(cal.pixelHeight),
        pixel_depth=float(cal.pixelDepth),
        unit=str(cal.getUnit()),
        x_origin=float(cal.xOrigin),
        y_origin=float(cal.yOrigin),
        z_origin=float(cal.zOrigin),
        frame_interval=float(cal.frameInterval),
        time_unit=str(cal.getTimeUnit()),
    )


def set_calibration(imp, calibration: Calibration) -> None:
    """Give an ImagePlus the spatial and temporal calibration (no intensity calibration)."""
    from ij.measure import Calibration as JCalibration

    cal = JCalibration(imp)
    cal.pixelWidth = calibration.pixel_width
    cal.pixelHeight = calibration.pixel_height
    cal.pixelDepth = calibration.pixel_depth
    cal.setUnit(calibration.unit)
    cal.xOrigin = calibration.x_origin
    cal.yOrigin = calibration.y_origin
    cal.zOrigin = calibration.z_origin
    cal.frameInterval = calibration.frame_interval
    cal.setTimeUnit(calibration.time_unit)
    imp.setCalibration(cal)


# ------------------------------------------------------------------------------------------------------ pixels


def axes_of(imp, channel: int | None = None) -> str:
    """The axes ``to_numpy`` gives for an ImagePlus (and ``channel``)."""
    _, _, nc, nz, nt = (int(d) for d in imp.getDimensions())
    axes = ("T" if nt > 1 else "") + ("Z" if nz > 1 else "") + ("C" if nc > 1 and channel is None else "") + "YX"
    if int(imp.getBitDepth()) == 24 and channel is None:
        axes += "C"
    return axes


def to_numpy(imp, channel: int | None = None) -> tuple[np.ndarray, str]:
    """Pixels of an ImagePlus as a numpy array, with its axes.

    Parameters
    ----------
    imp : ij.ImagePlus
        8-bit (uint8), 16-bit (uint16), 32-bit (float32) or RGB (uint8, last axis of 3); 2D, stack or hyperstack.
    channel : int, optional
        0-based channel to take: of a multichannel hyperstack (only its planes are copied), or of an RGB image
        (0 red, 1 green, 2 blue).

    Returns
    -------
    array, axes
        ``axes`` as in ``axes_of``, e.g. ``"YX"``, ``"ZYX"``, ``"TZCYX"``, ``"YXC"`` (RGB).

    Examples
    --------
    >>> array, axes = to_numpy(IJ.createImage("t", "16-bit ramp", 64, 32, 3))  # doctest: +SKIP
    >>> array.shape, array.dtype, axes  # doctest: +SKIP
    ((3, 32, 64), dtype('uint16'), 'ZYX')
    """
    width, height, nc, nz, nt = (int(d) for d in imp.getDimensions())
    depth = int(imp.getBitDepth())
    rgb = depth == 24
    n_channels = 3 if rgb else nc
    if channel is not None and not 0 <= channel < n_channels:
        kind = "colour channel" if rgb else "channel"
        raise InputError(f"{kind} {channel + 1} does not exist: the image has {n_channels} (channel=1..{n_channels})")
    channels = [0] if rgb or channel is not None else list(range(nc))
    hyper_c = 0 if rgb else (channel if channel is not None else None)
    dtype = {8: np.uint8, 16: np.uint16, 32: np.float32, 24: np.uint32}[depth]
    stack = imp.getStack()
    indices = [
        int(imp.getStackIndex(c + 1, z + 1, t + 1))
        for t in range(nt)
        for z in range(nz)
        for c in (channels if hyper_c is None else [hyper_c])
    ]
    array = np.empty((len(indices), height, width), dtype)
    for plane, index in zip(array, indices, strict=True):
        _java_into(stack.getPixels(index), plane)
    if rgb:
        shifts = np.array([16, 8, 0], np.uint32)
        if channel is None:
            array = ((array[..., np.newaxis] >> shifts) & 0xFF).astype(np.uint8)
        else:
            array = ((array >> shifts[channel]) & 0xFF).astype(np.uint8)
    n_c = len(channels) if hyper_c is None else 1
    array = array.reshape(nt, nz, n_c, *array.shape[1:])
    keep = tuple(i for i, n in enumerate((nt, nz, n_c)) if n == 1)
    return array.squeeze(axis=keep), axes_of(imp, channel)


def _java_into(pixels, out: np.ndarray) -> None:
    """Copy a Java primitive array into a contiguous numpy array of the same size (Java does the memcpy)."""
    import jpype
    from java.nio import ByteOrder

    buffer = jpype.nio.convertToDirectBuffer(out).order(ByteOrder.nativeOrder())
    view = {1: None, 2: "asShortBuffer", 4: "asFloatBuffer" if out.dtype.kind == "f" else "asIntBuffer"}
    name = view[out.dtype.itemsize]
    (buffer if name is None else getattr(buffer, name)()).put(pixels)


def _plane_to_numpy(pixels, dtype, height: int, width: int) -> np.ndarray:
    plane = np.empty((height, width), dtype)
    _java_into(pixels, plane)
    return plane


def to_imageplus(array: np.ndarray, axes: str | None = None, *, title: str = "image", calibration=None):
    """A new ImagePlus holding a copy of a numpy array.

    Parameters
    ----------
    array : numpy array
        uint8 → 8-bit, uint16 → 16-bit, float32 → 32-bit, bool → 8-bit 0/255; other integer and float types →
        32-bit (integers must stay below 2**24 to be exact).
    axes : str, optional
        Letters from ``TZCYX`` (``S`` counts as ``C``, ``I``/``Q`` as ``Z``); default ``YX``, ``ZYX``, ``TZYX``,
        ``TZCYX`` by number of dimensions. Channels become a composite image (greyscale mode).
    title : str
        Window title.
    calibration : Calibration, optional
        Pixel size and units to attach.

    Examples
    --------
    >>> imp = to_imageplus(np.zeros((3, 32, 64), np.uint16), "ZYX", title="stack")  # doctest: +SKIP
    >>> imp.getNSlices(), imp.getBitDepth()  # doctest: +SKIP
    (3, 16)
    """
    from ij import CompositeImage, ImagePlus, ImageStack

    array = np.asarray(array)
    axes = _normal_axes(array, axes)
    array = _imagej_dtype(array)
    missing = "".join(a for a in HYPERSTACK_AXES if a not in axes)  # add them as length-1 axes, then order TZCYX
    full = array.reshape(array.shape + (1,) * len(missing))
    full = np.transpose(full, [(axes + missing).index(a) for a in HYPERSTACK_AXES])
    nt, nz, nc, height, width = full.shape
    stack = ImageStack(width, height)
    for plane in full.reshape(-1, height, width):
        stack.addSlice("", _plane_to_java(plane))
    imp = ImagePlus(title, stack)
    imp.setDimensions(nc, nz, nt)
    if nc > 1:
        imp = CompositeImage(imp, CompositeImage.GRAYSCALE)
    elif nz > 1 and nt > 1:
        imp.setOpenAsHyperStack(True)
    if calibration is not None:
        set_calibration(imp, calibration)
    return imp


def _normal_axes(array: np.ndarray, axes: str | None) -> str:
    if axes is None:
        defaults = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TZCYX"}
        if array.ndim not in defaults:
            raise InputError(f"cannot make an ImageJ image of shape {array.shape}: expected 2 to 5 dimensions")
        return defaults[array.ndim]
    axes = axes.upper().replace("S", "C").replace("I", "Z").replace("Q", "Z")
    if len(axes) != array.ndim or len(set(axes)) != len(axes) or not set(axes) <= set(HYPERSTACK_AXES):
        raise InputError(f"axes {axes!r} do not fit an array of shape {array.shape} (use letters from TZCYX)")
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"axes {axes!r} need Y and X")
    return axes


def _imagej_dtype(array: np.ndarray) -> np.ndarray:
    if array.dtype in (np.uint8, np.uint16, np.float32):
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype.kind in "ui" and array.size and (array.max() >= MAX_EXACT_FLOAT or array.min() <= -MAX_EXACT_FLOAT):
        raise InputError(f"{array.dtype} values beyond ±2**24 cannot be stored exactly in a 32-bit ImageJ image")
    if array.dtype.kind not in "uif":
        raise InputError(f"cannot make an ImageJ image from {array.dtype} data")
    return array.astype(np.float32)


def _plane_to_java(plane: np.ndarray):
    import jpype
    from java.nio import ByteOrder

    kinds = {
        np.dtype(np.uint8): (jpype.JByte, "asByteBuffer"),  # Java bytes/shorts are signed: same bits, no math
        np.dtype(np.uint16): (jpype.JShort, "asShortBuffer"),
        np.dtype(np.float32): (jpype.JFloat, "asFloatBuffer"),
    }
    jtype, view = kinds[plane.dtype]
    plane = np.require(plane, requirements=("C", "W"))  # a writable, contiguous buffer JPype can wrap
    java = jpype.JArray(jtype)(plane.size)
    buffer = jpype.nio.convertToDirectBuffer(plane).order(ByteOrder.nativeOrder())
    (buffer if view == "asByteBuffer" else getattr(buffer, view)()).get(java)
    return java


# -------------------------------------------------------------------------------------------------------- ROIs


def labels_to_rois(labels: np.ndarray, *, position=None, names: str = "{label:05d}") -> list:
    """One traced polygon ROI per cell of a 2D label image (cells with holes become composite ROIs).

    Parameters
    ----------
    labels : 2D integer array
        0 = background / boundaries, ``n`` = cell ``n`` (a 4-connected region, as the engine makes them).
    position : int or (c, z, t), optional
        Stack position given to every ROI (stack index, or hyperstack position with 0 for "all").
    names : str
        Format of the ROI names; ``label`` is the cell's label.

    Returns
    -------
    list of ij.gui.Roi
        By ascending label. Each ROI covers exactly the pixels of its label (areas equal pixel counts): the polygon
        ImageJ's wand traces (``epyseg_ij.measure.outlines``).
    """
    from .. import measure

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"labels_to_rois needs a 2D label image, got shape {labels.shape}")
    return outlines_to_rois(measure.outlines(labels), position=position, names=names)


def outlines_to_rois(outlines: Sequence, *, position=None, names: str = "{label:05d}") -> list:
    """ImageJ ROIs of cell outlines (``epyseg_ij.measure.Outline``): traced polygons, or composite (even-odd) ROIs
    for cells with holes or in pieces; named and positioned as in ``labels_to_rois``."""
    import jpype
    from ij.gui import PolygonRoi, Roi, ShapeRoi
    from java.awt.geom import Path2D

    rois = []
    for outline in outlines:
        if outline.traced:
            ring = outline.rings[0]
            xs, ys = (jpype.JArray(jpype.JInt)(ring[:, k].tolist()) for k in (0, 1))
            roi = PolygonRoi(xs, ys, len(ring), Roi.TRACED_ROI)
        else:
            path = Path2D.Float(Path2D.WIND_EVEN_ODD)
            for ring in outline.rings:
                path.moveTo(float(ring[0, 0]), float(ring[0, 1]))
                for x, y in ring[1:].tolist():
                    path.lineTo(float(x), float(y))
                path.closePath()
            roi = ShapeRoi(path)
        roi.setName(names.format(label=outline.label))
        _set_position(roi, position)
        rois.append(roi)
    return rois


def rois_to_labels(rois: Sequence, shape: tuple[int, int], dtype=np.uint16) -> np.ndarray:
    """Paint ROIs into a new label image: ROI ``i`` (0-based) gets label ``i + 1``; later ROIs paint over earlier."""
    labels = np.zeros(shape, dtype)
    height, width = shape
    for i, roi in enumerate(rois):
        bounds = roi.getBounds()
        x0, y0, w, h = int(bounds.x), int(bounds.y), int(bounds.width), int(bounds.height)
        mask_ip = roi.getMask()
        if mask_ip is None:  # a rectangle
            mask = np.ones((h, w), bool)
        else:
            mask = _plane_to_numpy(mask_ip.getPixels(), np.uint8, h, w) > 0
        ya, yb, xa, xb = max(y0, 0), min(y0 + h, height), max(x0, 0), min(x0 + w, width)
        if ya < yb and xa < xb:
            window = labels[ya:yb, xa:xb]
            window[mask[ya - y0 : yb - y0, xa - x0 : xb - x0]] = i + 1
    return labels


def _set_position(roi, position) -> None:
    if position is None:
        return
    if isinstance(position, tuple):
        roi.setPosition(*(int(p) for p in position))
    else:
        roi.setPosition(int(position))


def rois_to_zip(rois: Sequence, path: os.PathLike, overwrite: bool = True) -> Path:
    """Write ImageJ ROIs as an ImageJ/Fiji RoiSet .zip (``RoiEncoder`` format), atomically, with the permissions of
    any other new file. (The commands write their cells' RoiSets with ``epyseg_ij.roiset``, without the JVM.)"""
    from ij.io import RoiEncoder

    from .. import files, roiset

    path = Path(path)
    names = roiset.unique_names([str(roi.getName() or "") for roi in rois])

    def put(fh) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:
            for name, roi in zip(names, rois, strict=True):
                z.writestr(f"{name}.roi", _java_bytes(RoiEncoder.saveAsByteArray(roi)))

    files.atomic_write(path, put, overwrite=overwrite)
    return path


def rois_from_zip(path: os.PathLike) -> list:
    """Read an ImageJ/Fiji RoiSet .zip (or a single .roi) with ImageJ's ``RoiDecoder``."""
    import jpype
    from ij.io import RoiDecoder

    path = Path(path)
    try:
        if path.suffix.lower() == ".roi":
            entries = [(path.stem, path.read_bytes())]
        else:
            with zipfile.ZipFile(path) as z:
                entries = [(Path(n).stem, z.read(n)) for n in z.namelist() if n.lower().endswith(".roi")]
    except (OSError, zipfile.BadZipFile) as error:
        raise InputError(f"{path}: not a readable ROI file ({error})") from None
    rois = []
    for name, data in entries:
        roi = RoiDecoder.openFromByteArray(jpype.JArray(jpype.JByte)(np.frombuffer(data, np.int8)))
        if roi is None:
            raise InputError(f"{path}: {name}.roi is not an ImageJ ROI")
        if not roi.getName():
            roi.setName(name)
        rois.append(roi)
    return rois


def _java_bytes(array) -> bytes:
    view = np.asarray(array)
    data = view.tobytes()
    del view
    return data


def rois_to_overlay(rois: Sequence):
    """An ImageJ Overlay holding the ROIs."""
    from ij.gui import Overlay

    overlay = Overlay()
    for roi in rois:
        overlay.add(roi)
    return overlay


# ------------------------------------------------------------------------------------------------ results table


def table_to_results(table: dict[str, np.ndarray], results=None):
    """A ResultsTable with one column per entry (numbers); ``results`` is cleared and filled if given."""
    from ij.measure import ResultsTable

    rt = results if results is not None else ResultsTable()
    rt.reset()
    n = len(next(iter(table.values()))) if table else 0
    for _ in range(n):
        rt.incrementCounter()
    for name, values in table.items():
        values = np.asarray(values, dtype=np.float64)
        if len(values) != n:
            raise ValueError(f"column {name} has {len(values)} values, expected {n}")
        rt.setValues(name, _plane_to_java_doubles(values))
    for name, values in table.items():  # ImageJ shows integers without decimals when the column is "int"
        if np.issubdtype(np.asarray(values).dtype, np.integer):
            rt.setDecimalPlaces(rt.getColumnIndex(name), 0)
    return rt


def _plane_to_java_doubles(values: np.ndarray):
    import jpype

    return jpype.JArray(jpype.JDouble)(np.ascontiguousarray(values, dtype=np.float64))


def results_to_table(rt) -> dict[str, np.ndarray]:
    """The numeric columns of a ResultsTable as float64 arrays, by heading."""
    table = {}
    headings = [str(h) for h in rt.getHeadings()]
    for name in headings:
        if name in (" ", "Label") and not rt.columnExists(name):
            continue
        column = rt.getColumn(name) if rt.columnExists(name) else None
        if column is not None:
            table[name] = np.array(np.asarray(column), dtype=np.float64)
    return table
