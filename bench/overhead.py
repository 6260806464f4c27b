"""Overhead of epyseg-ij around the network, and peak memory on a 16384 x 16384 image.

Prints one JSON object:
  network_s_per_mpix     bare ``model.predict`` on exactly the tiles ``segment`` runs (2048 x 2048 image)
  compiled_network_s_per_mpix  the same tiles through the compiled call ``segment`` uses (``Model.predict_batch``),
                         which is faster than ``model.predict``; ``ratio_compiled`` divides by this one
  end_to_end_s_per_mpix  ``segment`` with default options on the same image (normalise, tile, predict, stitch,
                         post-process to outlines and labels)
  ratio                  end-to-end / network (target <= 1.25 on CPU)
  peak_rss_mb_16k        peak resident memory of a fresh process that segments a 16384 x 16384 uint16 image

Usage: python bench/overhead.py [--model NAME|PATH] [--size 2048] [--big 16384] [--repeat 2]
Without a model the shipped default is used (or, if absent, a randomly initialised Linknet-vgg16, EPySeg's network).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def tissue(size: int, seed: int = 0) -> np.ndarray:
    """A realistic uint16 epithelium of any size: synthetic 1024-px tiles, mirrored so that junctions continue."""
    from epyseg_ij.synth import STYLES, synth_epithelium

    base = synth_epithelium((1024, 1024), seed=seed, style=STYLES["heldout"]).image.astype(np.uint16)
    block = np.block([[base, base[:, ::-1]], [base[::-1], base[::-1, ::-1]]])
    reps = -(-size // block.shape[0])
    return np.ascontiguousarray(np.tile(block, (reps, reps))[:size, :size])


def model_path(name: str | None) -> str:
    from epyseg_ij import models

    if name:
        return name
    if models.shipped_model_path().exists():
        return models.DEFAULT_MODEL
    path = Path(tempfile.gettempdir()) / "epyseg-ij-bench-vgg16.h5"
    if not path.exists():
        models.save_model(models.build_linknet("vgg16", 7), path, models.ModelCard("random-vgg16"))
    return str(path)


def network_seconds(model, image: np.ndarray, repeat: int) -> tuple[float, float]:
    """model.predict, then the compiled call, on the tiles segment() builds, in the same batches."""
    from epyseg_ij import predict

    tiling = predict.Tiling(model.card.tile, model.card.overlap)
    margin = tiling.overlap // 2
    win, starts = predict.axis_windows(image.shape[0], tiling.tile, margin)
    intensity = predict.intensity_range(image)
    tiles = np.stack([
        intensity(predict.read_window(image, y - margin, x - margin, win, win)) for y in starts for x in starts
    ])[..., None]  # fmt: skip
    batches = [tiles[i : i + tiling.batch] for i in range(0, len(tiles), tiling.batch)]
    runs = {
        "predict": lambda: model.keras.predict(tiles, batch_size=tiling.batch, verbose=0),
        "compiled": lambda: [model.predict_batch(b) for b in batches],
    }
    best = {}
    for name, run in runs.items():
        run()  # warm-up
        best[name] = min(_seconds(run) for _ in range(repeat))
    return best["predict"], best["compiled"]


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def end_to_end_seconds(model, image: np.ndarray, repeat: int) -> float:
    import epyseg_ij

    epyseg_ij.segment(image[:256, :256], model)  # warm-up (tracing)
    return min(_seconds(lambda: epyseg_ij.segment(image, model)) for _ in range(repeat))


def peak_rss_child(model: str, size: int) -> None:
    """Run in a fresh process: segment one big image, print the peak RSS in MB."""
    import epyseg_ij

    image = tissue(size)
    start = time.perf_counter()
    result = epyseg_ij.segment(image, model)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": round(peak), "seconds": round(seconds, 1), "cells": result.n_cells[0]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--big", type=int, default=16384, help="0 to skip the memory measurement")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="256 px, 512 px for memory, one repeat (a smoke run)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.big, args.repeat = 256, 512, 1
    if args.child:
        return peak_rss_child(args.model, args.big)
    from epyseg_ij import models

    name = model_path(args.model)
    model = models.load(name)
    image = tissue(args.size)
    mpix = image.size / 1e6
    network, compiled = (s / mpix for s in network_seconds(model, image, args.repeat))
    end_to_end = end_to_end_seconds(model, image, args.repeat) / mpix
    report = {
        "model": model.name,
        "encoder": model.card.encoder,
        "image": list(image.shape),
        "network_s_per_mpix": round(network, 3),
        "end_to_end_s_per_mpix": round(end_to_end, 3),
        "ratio": round(end_to_end / network, 3),
        "compiled_network_s_per_mpix": round(compiled, 3),
        "ratio_compiled": round(end_to_end / compiled, 3),
    }
    if args.big:
        child = [sys.executable, __file__, "--child", "--model", name, "--big", str(args.big)]
        big = json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        report |= {"peak_rss_mb_16k": big["peak_rss_mb"], "seconds_16k": big["seconds"], "cells_16k": big["cells"]}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
