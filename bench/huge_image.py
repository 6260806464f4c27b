"""Peak memory and time of segmenting a huge uint16 image from a Zarr store, out of core, into a Zarr group.

Prints one JSON object:
  size             the image is size x size uint16 (synthetic tissue, as bench/overhead.py draws it)
  peak_rss_mb      peak resident memory of the fresh process that runs ``segment(store, out=...)``
  seconds          its time for the segmentation (model loaded and compiled), and s_per_mpix
  cells            cells found
  input_mb, output_mb   sizes of the Zarr store read and of the group written, on disk

Usage: python bench/huge_image.py [--size 32768] [--model NAME|PATH] [--folder DIR] [--quick]
The store is written to DIR (default: a new temporary folder, removed at the end) a row of blocks at a time, so
this process never holds the image either. Progress goes to stderr.
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from overhead import tissue  # noqa: E402

BLOCK = 2048  # px: the synthetic tissue repeats every 2048 px (mirrored 1024-px tiles); Zarr chunks are 1024 px


def write_store(path: Path, size: int) -> None:
    """A size x size uint16 Zarr array of synthetic tissue, written a row of blocks at a time."""
    import zarr

    block = tissue(min(size, BLOCK))
    array = zarr.create_array(path, shape=(size, size), chunks=(1024, 1024), dtype="uint16")
    reps = -(-size // block.shape[1])
    for y in range(0, size, block.shape[0]):
        rows = min(block.shape[0], size - y)
        array[y : y + rows] = np.tile(block[:rows], (1, reps))[:, :size]


def child(store: str, out: str, model: str | None) -> None:
    """In a fresh process: segment the store into ``out``; print the peak RSS, time and cell count."""
    import epyseg_ij
    from epyseg_ij import models

    network = models.load(model)
    epyseg_ij.segment(np.zeros((64, 64), np.uint16), network)  # warm-up: the backend compiles the network
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if done == total or time.perf_counter() - last[0] > 60:
            last[0] = time.perf_counter()
            print(f"{time.strftime('%H:%M:%S')} {done}/{total} tiles", file=sys.stderr, flush=True)

    start = time.perf_counter()
    result = epyseg_ij.segment(store, network, out=out, progress=progress)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": round(peak), "seconds": round(seconds, 1), "cells": sum(result.n_cells)}))


def disk_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32768)
    parser.add_argument("--model")
    parser.add_argument("--folder", type=Path, help="where the store and the output go (kept)")
    parser.add_argument("--quick", action="store_true", help="a 1024 x 1024 image (a smoke run)")
    parser.add_argument("--child", nargs=2, metavar=("STORE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.model)
    size = 1024 if args.quick else args.size
    folder = args.folder or Path(tempfile.mkdtemp(prefix="epyseg-ij-huge-"))
    store, out = folder / f"tissue-{size}.zarr", folder / f"cells-{size}.zarr"
    try:
        if not store.exists():
            write_store(store, size)
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, __file__, "--child", str(store), str(out)] + (
            ["--model", args.model] * bool(args.model)
        )
        run = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        report = json.loads(run.stdout.splitlines()[-1])
        mpix = size * size / 1e6
        report |= {
            "s_per_mpix": round(report["seconds"] / mpix, 3),
            "input_mb": disk_mb(store),
            "output_mb": disk_mb(out),
        }
        print(json.dumps({"size": size, "model": args.model or "default", **report}))
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
