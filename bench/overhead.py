"""Overhead of epyseg-ij around the network on each backend, and peak memory on a 16384 x 16384 image.

Prints one JSON object. ``tensorflow`` and ``openvino`` each hold, on a 2048 x 2048 uint16 epithelium:
  network_s_per_mpix     the backend's network on exactly the tiles ``segment`` runs, in its batches
  end_to_end_s_per_mpix  ``segment(image, backend=...)`` with default options (normalise, tile, predict, stitch,
                         post-process to outlines and labels)
  ratio                  end-to-end / network (target <= 1.25 on CPU with the faster backend)
  postprocess_s_per_mpix what follows the network's decoded maps (markers, cells, merges, outlines, labels): the
                         end-to-end time less that of normalising, tiling, predicting, stitching and decoding
  postprocess_share      post-processing / end-to-end (to keep under 0.2)
then:
  faster                 the backend with the faster end-to-end time; ``ratio`` and ``postprocess_share`` are its
  peak_rss_mb_16k        peak resident memory (MiB) of a fresh process that segments a 16384 x 16384 uint16 image
                         with the backend ``segment`` chooses by default (``backend_16k``; ``seconds_16k``,
                         ``cells_16k``: its time and cells)

Usage: python bench/overhead.py [--model NAME|PATH] [--size 2048] [--big 16384] [--repeat 3]
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

BACKENDS = ("tensorflow", "openvino")


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


def tiling_of(model):
    from epyseg_ij import predict

    return predict.Tiling(model.card.tile, model.card.overlap)


def network_run(run, model, image: np.ndarray):
    """A call of the backend's network on the tiles segment() builds, in the same batches."""
    from epyseg_ij import predict

    tiling = tiling_of(model)
    margin = tiling.overlap // 2
    win, starts = predict.axis_windows(image.shape[0], tiling.tile, margin)
    intensity = predict.intensity_range(image, model.card.normalization)
    tiles = np.stack([
        intensity(predict.read_window(image, y - margin, x - margin, win, win)) for y in starts for x in starts
    ])[..., None]  # fmt: skip
    batches = [tiles[i : i + tiling.batch] for i in range(0, len(tiles), tiling.batch)]
    return lambda: [run(b) for b in batches]


def maps_run(run, model, image: np.ndarray):
    """What ``segment`` does before post-processing: normalise, tile, run the network, stitch, decode the maps."""
    from epyseg_ij import postprocess, predict

    def maps() -> None:
        intensity = predict.intensity_range(image, model.card.normalization)
        rows = predict.predict_rows(image, run, tiling_of(model), intensity, predict.tta_transforms("none"))
        for _, probs in rows:
            postprocess.decode(probs, model.card.outputs)

    return maps


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def peak_rss_child(model: str, size: int, backend: str) -> None:
    """Run in a fresh process: segment one big image, print the peak RSS in MiB."""
    import epyseg_ij

    image = tissue(size)
    start = time.perf_counter()
    result = epyseg_ij.segment(image, model, backend=backend)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": round(peak), "seconds": round(seconds, 1), "cells": result.n_cells[0]}))


def backend_figures(model, image: np.ndarray, backend: str, repeat: int) -> dict:
    """Each time is the best of ``repeat`` runs, the three measurements taking turns (the load drifts alike)."""
    import epyseg_ij
    from epyseg_ij import backends

    run = backends.predictor(model, backend)
    steps = {
        "network": network_run(run, model, image),
        "end_to_end": lambda: epyseg_ij.segment(image, model, backend=backend),
        "maps": maps_run(run, model, image),
    }
    epyseg_ij.segment(image[:256, :256], model, backend=backend)  # warm-up
    steps["network"]()
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(repeat):
        for name, step in steps.items():
            best[name] = min(best[name], _seconds(step))
    network, end_to_end, maps = (best[k] / (image.size / 1e6) for k in ("network", "end_to_end", "maps"))
    post = end_to_end - maps
    return {
        "network_s_per_mpix": round(network, 3),
        "end_to_end_s_per_mpix": round(end_to_end, 3),
        "ratio": round(end_to_end / network, 3),
        "postprocess_s_per_mpix": round(post, 3),
        "postprocess_share": round(post / end_to_end, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--big", type=int, default=16384, help="0 to skip the memory measurement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="256 px, 512 px for memory, one repeat (a smoke run)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.big, args.repeat = 256, 512, 1
    if args.child:
        return peak_rss_child(args.model, args.big, args.backend)
    from epyseg_ij import models

    name = model_path(args.model)
    model = models.load(name)
    image = tissue(args.size)
    report: dict = {"model": model.name, "encoder": model.card.encoder, "image": list(image.shape)}
    report |= {backend: backend_figures(model, image, backend, args.repeat) for backend in BACKENDS}
    faster = min(BACKENDS, key=lambda b: report[b]["end_to_end_s_per_mpix"])
    report |= {"faster": faster, "ratio": report[faster]["ratio"]}
    report["postprocess_share"] = report[faster]["postprocess_share"]
    if args.big:
        from epyseg_ij import backends

        child = [sys.executable, __file__, "--child", "--model", name, "--big", str(args.big), "--backend", "auto"]
        big = json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        report |= {"peak_rss_mb_16k": big["peak_rss_mb"], "seconds_16k": big["seconds"], "cells_16k": big["cells"]}
        report["backend_16k"] = backends.choose("auto")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
