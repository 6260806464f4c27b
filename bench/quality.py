"""Segmentation quality of models on two sets with reference segmentations, scored as ``epyseg-ij evaluate`` does.

- ``heldout_synthetic``: synthetic epithelia of the "heldout" style, whose generator parameters were not used to train
  the default model (512 x 512, seeds (9000, i));
- ``epitools_wingdisc``: the 8 EpiTools wing-disc frames against their reference labels (an algorithmic reference
  segmentation, not manual ground truth).

Each image is segmented, its labels written to a TIFF and scored with ``metrics.evaluate_files`` (what the
``evaluate`` command runs), over all cells and (``inner_``) over the cells that do not touch the image border: the
EpiTools reference leaves border cells unsegmented (one region), so every border cell found counts as an
over-segmentation there. Prints one JSON object with the mean scores per model and set.

Usage: python bench/quality.py [--models default classical] [--tta none] [--n 6]
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]
EPITOOLS = REPO.parent / "shared" / "data" / "epitools_wingdisc" / "derived"
KEYS = ("seg_quality", "pixel_iou", "n_gt", "n_pred", "n_correct", "n_over", "n_under")


def image_sets(n: int):
    """{set: [(name, image, reference labels)]}."""
    from epyseg_ij.synth import HELDOUT, synth_epithelium

    samples = [synth_epithelium((512, 512), seed=(9000, i), style=HELDOUT) for i in range(n)]
    sets = {"heldout_synthetic": [(f"heldout_{i}", s.image, s.labels) for i, s in enumerate(samples)]}
    if EPITOOLS.exists():
        frames = sorted((EPITOOLS / "images").glob("frame_*.tif"))
        sets["epitools_wingdisc"] = [
            (p.stem, tifffile.imread(p), tifffile.imread(EPITOOLS / "labels" / p.name)) for p in frames
        ]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "classical"])
    parser.add_argument("--tta", default="none")
    parser.add_argument("--n", type=int, default=6)
    args = parser.parse_args()

    import epyseg_ij
    from epyseg_ij import io
    from epyseg_ij.metrics import evaluate_files

    report = {"tta": args.tta}
    sets = image_sets(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            report[model] = {}
            for set_name, items in sets.items():
                scores, inner = [], []
                for name, image, reference in items:
                    labels = epyseg_ij.segment(image, model, tta=args.tta).labels
                    pred = io.write_tiff(Path(tmp) / f"{name}_pred.tif", labels)
                    gt = io.write_tiff(Path(tmp) / f"{name}_gt.tif", reference)
                    scores.append(evaluate_files(pred, gt))
                    inner.append(evaluate_files(pred, gt, exclude_border=True))
                mean = {k: round(float(np.mean([s[k] for s in scores])), 4) for k in KEYS}
                mean |= {
                    f"inner_{k}": round(float(np.mean([s[k] for s in inner])), 4) for k in KEYS if k != "pixel_iou"
                }
                report[model][set_name] = mean
    print(json.dumps(report))


if __name__ == "__main__":
    main()
