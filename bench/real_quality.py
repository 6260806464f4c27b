"""Segmentation quality on real tissue, the yardstick of the default model: one JSON object.

Real sets (from ``../shared/data``; a missing set is left out and listed under ``missing``):

- ``epitools_wingdisc``: 8 wing-disc frames against EpiTools' reference labels (algorithmic, leaves border cells
  unsegmented: ``inner_seg_quality`` scores only cells off the border);
- ``ishihara_junctions``: one apical-junction image against its curated 1-px skeleton;
- ``plantseg_ovule``: PlantSeg's 2D ovule crop (plant cell walls) against its proofread labels, an extra set.

The default model trains on a modest part of them (``scripts/real_training_data.py``: EpiTools frames 6-7 and the
left part of the Ishihara image), so their held-out parts are scored on their own too: ``epitools_heldout`` (frames
0-5) and ``ishihara_right`` (the image right of ``ISHIHARA_SPLIT``), with ``heldout_real_mean`` over them and
``plantseg_ovule``.

Held-out synthetic styles (``synth.HELDOUT_STYLES``, never used in training) are scored too. For every model and set:
mean SEG (the EPySeg paper's segmentation quality), mean boundary pixel IoU, and the summed n_over / n_under, plus
``real_mean`` (mean SEG over the real sets) and the margin over ``classical``.

Usage: python bench/real_quality.py [--model PATH_OR_NAME ...] [--tta none] [--quick]
``--quick`` scores one image of each set on small crops (seconds; run by the test suite).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
EPITOOLS = DATA / "epitools_wingdisc" / "derived"
ISHIHARA = DATA / "ishihara_junctions" / "derived" / "ta"
PLANTSEG = DATA / "plantseg_ovules" / "derived"
REAL_SETS = ("epitools_wingdisc", "ishihara_junctions", "plantseg_ovule")
HELDOUT_SETS = ("epitools_heldout", "ishihara_right", "plantseg_ovule")
EPITOOLS_TRAINED = (6, 7)  # frames in the default model's training data
ISHIHARA_SPLIT = 201  # columns left of it are in the default model's training data


def real_sets(quick: bool) -> tuple[dict[str, list], list[str]]:
    """{set: [(name, image, reference)]} for the real sets found, and the names of those missing."""

    def pair(image, reference):
        return lambda: [(Path(image).stem, tifffile.imread(image), tifffile.imread(reference))]

    loaders = {
        "epitools_wingdisc": lambda: [
            (p.stem, tifffile.imread(p), tifffile.imread(EPITOOLS / "labels" / p.name))
            for p in sorted((EPITOOLS / "images").glob("frame_*.tif"))
        ],
        "ishihara_junctions": pair(ISHIHARA / "junctions.tif", ISHIHARA / "junctions" / "handCorrection.tif"),
        "plantseg_ovule": pair(PLANTSEG / "train_2D_2D_raw.tif", PLANTSEG / "train_2D_2D_labels.tif"),
    }
    found, missing = {}, []
    for name, load in loaders.items():
        try:
            found[name] = load()
        except FileNotFoundError:
            missing.append(name)
    if "epitools_wingdisc" in found:
        trained = {f"frame_{i:02d}" for i in EPITOOLS_TRAINED}
        found["epitools_heldout"] = [item for item in found["epitools_wingdisc"] if item[0] not in trained]
    if "ishihara_junctions" in found:
        found["ishihara_right"] = [(n, im[:, ISHIHARA_SPLIT:], ref[:, ISHIHARA_SPLIT:])
                                   for n, im, ref in found["ishihara_junctions"]]  # fmt: skip
    return {name: items[:1] if quick else items for name, items in found.items()}, missing


def synthetic_sets(quick: bool) -> dict[str, list]:
    from epyseg_ij.synth import HELDOUT_STYLES, synth_epithelium

    n, size = (1, 128) if quick else (4, 512)
    sets = {}
    for name, style in HELDOUT_STYLES.items():
        samples = [synth_epithelium((size, size), seed=(9000, i), style=style) for i in range(n)]
        sets[f"synthetic_{name}"] = [(f"{name}_{i}", s.image, s.labels) for i, s in enumerate(samples)]
    return sets


def score(model, items: list, tta: str) -> dict:
    """Mean SEG and pixel IoU, summed over/under-segmentations, and inner-cell SEG over a set."""
    import epyseg_ij
    from epyseg_ij.metrics import evaluate

    full, inner, seconds = [], [], 0.0
    for _, image, reference in items:
        start = time.perf_counter()
        labels = epyseg_ij.segment(image, model, tta=tta).labels
        seconds += time.perf_counter() - start
        full.append(evaluate(labels, reference))
        inner.append(evaluate(labels, reference, exclude_border=True))
    return {
        "seg_quality": round(float(np.mean([s["seg_quality"] for s in full])), 4),
        "pixel_iou": round(float(np.mean([s["pixel_iou"] for s in full])), 4),
        "n_gt": sum(s["n_gt"] for s in full),
        "n_over": sum(s["n_over"] for s in full),
        "n_under": sum(s["n_under"] for s in full),
        "inner_seg_quality": round(float(np.mean([s["seg_quality"] for s in inner])), 4),
        "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="*", default=[], help="models to score besides default and classical")
    parser.add_argument("--tta", default="none")
    parser.add_argument("--quick", action="store_true", help="one small image per set (a smoke run)")
    args = parser.parse_args(argv)

    found, missing = real_sets(args.quick)
    if args.quick:
        found = {k: [(n, im[:128, :128], ref[:128, :128]) for n, im, ref in v] for k, v in found.items()}
    sets = found | synthetic_sets(args.quick)
    report: dict = {"tta": args.tta, "quick": args.quick, "missing": missing, "models": {}}
    for model in ["default", "classical", *args.model]:
        scores = {name: score(model, items, args.tta) for name, items in sets.items()}
        for key, names in (("real_mean", REAL_SETS), ("heldout_real_mean", HELDOUT_SETS)):
            real = [scores[s]["seg_quality"] for s in names if s in scores]
            scores[key] = round(float(np.mean(real)), 4) if real else None
        report["models"][str(model)] = scores
    classical = report["models"]["classical"]
    for name, scores in report["models"].items():
        if name != "classical":
            scores["margin_over_classical"] = {
                s: round(scores[s]["seg_quality"] - classical[s]["seg_quality"], 4) for s in found
            }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
