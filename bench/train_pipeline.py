"""Does the training data pipeline keep the network busy?

Prints one JSON object: steps/s of ``fit`` fed by the real pipeline (synthetic Tissue Analyzer folders read from disk,
augmentation on, tiles streamed through ``data.dataset``), steps/s of ``fit`` on batches already in memory, their
ratio (target >= 0.9; best run of each, measurements alternate), and how fast one batch maker alone makes batches.

    python bench/train_pipeline.py [--encoder vgg16] [--tile 256] [--batch 8] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="vgg16")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="alternate the two measurements this many times")
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--size", type=int, default=512, help="side of the synthetic images")
    p.add_argument("--workers", type=int, help="batch makers (default: data.default_workers())")
    p.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    args = p.parse_args()

    from epyseg_ij import augment, data, models, training
    from epyseg_ij._tf import tf
    from epyseg_ij.synth import write_dataset

    tensorflow = tf()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("EPYSEG_IJ_HOME", str(Path(tmp) / "home"))
        folder = Path(tmp) / "data"
        t = time.perf_counter()
        write_dataset(folder, args.images, (args.size, args.size), seed=0)
        images = [data.load_pair(pair) for pair in data.find_pairs([folder])]
        load_s = time.perf_counter() - t

        stream = data.tile_batches(images, args.tile, args.batch, augment.DEFAULT, seed=1)
        t = time.perf_counter()
        batches = [next(stream) for _ in range(args.steps)]
        data_only = args.steps / (time.perf_counter() - t)
        preloaded = tensorflow.data.Dataset.from_tensor_slices(
            (np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches]))
        ).repeat()
        workers = args.workers or data.default_workers()
        pipeline = data.dataset(images, args.tile, args.batch, augment.DEFAULT, seed=2, workers=workers)

        network = training.build(models.ModelCard("bench", args.encoder), args.precision)
        training.compile_network(network, 1e-3)
        network.fit(preloaded, steps_per_epoch=args.warmup, epochs=1, verbose=0)  # tracing
        network.fit(pipeline, steps_per_epoch=args.warmup, epochs=1, verbose=0)

        def rate(ds) -> float:
            t = time.perf_counter()
            network.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
            return args.steps / (time.perf_counter() - t)

        fed, mem = [], []
        for _ in range(args.repeats):
            mem.append(rate(preloaded))
            fed.append(rate(pipeline))
    # Shared machines switch between speeds while we measure; the best of several alternating runs of each feed is
    # the speed it reaches when nothing else interferes, so the headline ratio compares bests (means also given).
    pipeline_rate, preloaded_rate = max(fed), max(mem)
    print(
        json.dumps(
            {
                "encoder": args.encoder,
                "precision": args.precision,
                "tile": args.tile,
                "batch": args.batch,
                "timed_steps": args.steps * args.repeats,
                "pipeline_steps_per_s": round(pipeline_rate, 4),
                "preloaded_steps_per_s": round(preloaded_rate, 4),
                "ratio": round(pipeline_rate / preloaded_rate, 3),
                "ratio_of_means": round(float(np.mean(fed) / np.mean(mem)), 3),
                "pipeline_runs": [round(r, 4) for r in fed],
                "preloaded_runs": [round(r, 4) for r in mem],
                "workers": workers,
                "data_only_batches_per_s": round(data_only, 2),
                "load_s": round(load_s, 2),
                "images": f"{args.images} x {args.size}x{args.size}",
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "tensorflow": tensorflow.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
