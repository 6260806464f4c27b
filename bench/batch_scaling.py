"""Batch throughput on a Dask cluster of local worker processes (``segment --workers N``): images per second.

Prints one JSON object:
  images_per_s   {"serial": segment_files in this process, "1": one worker, "2": two workers, ...}; every process
                 has loaded and compiled the model before the clock starts (what a long batch sees)
  speedup        images_per_s of the most workers / of one worker
  images, size, model, cpus, load (the 1-minute load average before each run)

Usage: python bench/batch_scaling.py [--images 16] [--size 512] [--workers 1 2] [--model NAME|PATH] [--quick]
The images are synthetic tissue (bench/overhead.py's), each another draw, written as TIFFs.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from overhead import tissue  # noqa: E402


def warm(model: str | None) -> None:
    """Load and compile the model in this process (run on every worker)."""
    import epyseg_ij

    epyseg_ij.segment(np.zeros((64, 64), np.uint16), model)


def images_per_s(paths: list[Path], out: Path, model: str | None, client=None) -> float:
    from epyseg_ij.batch import segment_files

    start = time.perf_counter()
    reports = segment_files(paths, model=model, ta=False, out_dir=out, client=client)
    seconds = time.perf_counter() - start
    assert all(r.status == "written" for r in reports), [r.message for r in reports if r.status != "written"]
    return round(len(paths) / seconds, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model")
    parser.add_argument(
        "--quick", action="store_true", help="2 images of 128 px with the classical model (a smoke run)"
    )
    args = parser.parse_args()
    if args.quick:
        args.images, args.size, args.model = 2, 128, "classical"
    from epyseg_ij import cluster

    folder = Path(tempfile.mkdtemp(prefix="epyseg-ij-scaling-"))
    try:
        paths = [folder / f"img{i:03d}.tif" for i in range(args.images)]
        for i, path in enumerate(paths):
            tifffile.imwrite(path, tissue(args.size, seed=i))
        warm(args.model)
        load = {"serial": os.getloadavg()[0]}
        rates = {"serial": images_per_s(paths, folder / "serial", args.model)}
        for n in args.workers:
            with cluster.client(workers=n) as client:
                client.run(warm, args.model)
                load[str(n)] = os.getloadavg()[0]
                rates[str(n)] = images_per_s(paths, folder / f"workers-{n}", args.model, client)
        most, one = str(max(args.workers)), str(min(args.workers))
        report = {
            "images_per_s": rates,
            "speedup": round(rates[most] / rates[one], 3),
            "images": args.images,
            "size": args.size,
            "model": args.model or "default",
            "cpus": os.cpu_count(),
            "load": {k: round(v, 2) for k, v in load.items()},
        }
        print(json.dumps(report))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
