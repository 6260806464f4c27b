"""How segmentation quality depends on cell size: the held-out synthetic style drawn at several magnifications.

Prints one JSON object. For each ``scale`` (every length of ``synth.HELDOUT`` multiplied by it: cell diameter,
junction widths, blur), on ``--n`` images of ``--size`` px:
  median_diameter  the median cell diameter (px) that a first pass of the model finds
  seg_on           mean SEG of the model as its card says (``max_cell_diameter``: larger cells are segmented again at
                   a reduced size, see ``epyseg_ij.rescale``)
  seg_off          mean SEG with ``max_cell_diameter`` off
  seconds_on, seconds_off   time of each

Usage: python bench/cell_size.py [--model NAME|PATH] [--scales 1 1.5 2 3] [--n 2] [--size 768] [--quick]
"""

import argparse
import dataclasses
import json
import time

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--quick", action="store_true", help="one 256-px image at scales 1 and 2 (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.scales, args.n, args.size = [1.0, 2.0], 1, 256
    import epyseg_ij
    from epyseg_ij import models, rescale
    from epyseg_ij.metrics import evaluate
    from epyseg_ij.synth import HELDOUT, synth_epithelium

    model = models.load(args.model)
    largest = model.card.max_cell_diameter or 40.0
    on = dataclasses.replace(model, card=dataclasses.replace(model.card, max_cell_diameter=largest))
    off = dataclasses.replace(model, card=dataclasses.replace(model.card, max_cell_diameter=None))
    rows = []
    for scale in args.scales:
        style = dataclasses.replace(
            HELDOUT,
            cell_diameter=HELDOUT.cell_diameter * scale,
            junction_width=tuple(w * scale for w in HELDOUT.junction_width),
            blur_sigma=HELDOUT.blur_sigma * scale,
        )
        samples = [synth_epithelium((args.size, args.size), (7700, i), style) for i in range(args.n)]
        row = {"scale": scale, "median_diameter": [], "seg_on": [], "seg_off": [], "seconds_on": 0.0, "seconds_off": 0}
        for sample in samples:
            for name, network in (("on", on), ("off", off)):
                start = time.perf_counter()
                labels = epyseg_ij.segment(sample.image, network).labels
                row[f"seconds_{name}"] += time.perf_counter() - start
                row[f"seg_{name}"].append(evaluate(labels, sample.labels)["seg_quality"])
                if name == "off":
                    row["median_diameter"].append(rescale.median_diameter(labels))
        rows.append({k: round(float(np.mean(v)) if isinstance(v, list) else v, 3) for k, v in row.items()})
    report = {"model": args.model or "default", "max_cell_diameter": largest, "size": args.size, "n": args.n}
    report["scales"] = rows
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
