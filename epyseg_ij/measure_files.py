"""Measure label images and Tissue Analyzer masks on disk, without ImageJ: a per-cell CSV (units in the headers) and
a RoiSet ``.zip`` per image, for ``epyseg-ij measure`` and ``epyseg-ij segment --out DIR --results --rois``.

The numbers and ROIs are those of the ImageJ commands (``EPySeg Measure``, ``EPySeg Segment``): the same code
(``measure``, ``outlines``, ``roiset``) makes them.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import files, io, measure, roiset
from .errors import InputError

MASK_NAME = "handCorrection.tif"


@dataclass
class Measured:
    """What was measured in one file and written."""

    path: Path
    cells: int = 0
    left_out: int = 0  # cells on the border, with exclude_border
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # outputs that exist and were not replaced


def find_masks(inputs: list[str]) -> list[Path]:
    """Files named by paths or glob patterns, and the Tissue Analyzer masks (``*/handCorrection.tif``) of folders."""
    found: list[Path] = []
    for item in inputs:
        if any(c in item for c in "*?["):
            found += [Path(p) for p in sorted(glob.glob(item)) if Path(p).is_file()]
        elif Path(item).is_dir():
            masks = sorted(Path(item).glob(f"*/{MASK_NAME}"))
            if not masks:
                raise InputError(f"{item} holds no Tissue Analyzer masks ({MASK_NAME} in its image folders)")
            found += masks
        elif os.path.lexists(item):
            found.append(Path(item))
        else:
            raise InputError(f"{item}: no such file or folder")
    if not found:
        raise InputError(f"nothing to measure in {', '.join(inputs)}")
    return found


def result_name(path: Path) -> str:
    """The name of a file's results: its stem, or its image's for a Tissue Analyzer mask (``img/handCorrection.tif``:
    ``img``)."""
    return path.parent.name if path.name == MASK_NAME and path.parent.name else path.stem


def measure_file(
    path: os.PathLike,
    out_dir: os.PathLike,
    name: str | None = None,
    *,
    results: bool = True,
    rois: bool = False,
    exclude_border: bool = False,
    overwrite: bool = False,
) -> Measured:
    """Measure the cells of a label image or outline mask file into ``out_dir``.

    Writes ``<name>_results.csv`` (``results``) and ``<name>_RoiSet.zip`` (``rois``); ``name`` defaults to
    ``result_name(path)``. Each output that exists is kept unless ``overwrite``. Stacks give one table with
    ``Slice``/``Frame`` columns; colour and multichannel images are refused (``InputError``).
    """
    path, out_dir = Path(path), Path(out_dir)
    name = name or result_name(path)
    targets = {"results": out_dir / f"{name}_results.csv", "rois": out_dir / f"{name}_RoiSet.zip"}
    wanted = [key for key, on in (("results", results), ("rois", rois)) if on]
    report = Measured(path)
    todo = []
    for key in wanted:
        if files.require_regular(targets[key]) and not overwrite:
            report.kept.append(targets[key])
        else:
            todo.append(key)
    if not todo:
        return report
    image = io.read_image(path)
    if any(a in image.axes for a in "CS") or image.array.ndim != len(image.axes):
        raise InputError(f"{path}: a label image or an outline mask is needed, not a colour or multichannel image")
    labels = measure.as_labels(image.array)
    axes = image.axes
    per_plane = measure.plane_outlines(labels, axes, exclude_border)
    report.cells = sum(len(plane) for plane in per_plane)
    if exclude_border:
        report.left_out = sum(len(measure.border_cells(plane)) for _, _, plane in measure.planes(labels, axes))
    files.make_folder(out_dir)
    if "results" in todo:
        spacing = image.spacing or (1.0, 1.0)
        table = measure.results(labels, axes, spacing, outlines_per_plane=per_plane)
        measure.write_csv(targets["results"], table, image.unit or "pixel", overwrite=overwrite)
        report.written.append(targets["results"])
    if "rois" in todo:
        roiset.write(targets["rois"], roiset.cell_rois(labels, axes, per_plane), overwrite=overwrite)
        report.written.append(targets["rois"])
    return report
