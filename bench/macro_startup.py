"""What ``epyseg-ij macro`` pays to run ImageJ's own commands headless: truly headless vs the private display.

    PYTHONPATH=. .venv/bin/python bench/macro_startup.py [--repeats 3] [--quick]

Each way starts in a fresh Python process (a JVM starts once per process), which prints the seconds it took to start
ImageJ with the EPySeg service (``start_s``; the private display includes starting Xvfb, ``xvfb_s``) and to run a
first macro (``macro_s``: a new image and, where ImageJ's commands exist, ``run("Gaussian Blur...", ...)``). The
JSON holds the median of ``--repeats`` runs of each way and ``extra_start_s``, what the private display adds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MACRO = 'newImage("a", "32-bit ramp", 512, 512, 1); run("Gaussian Blur...", "sigma=2"); return getTitle();'
PLAIN = 'newImage("a", "32-bit ramp", 512, 512, 1); return getTitle();'


def child(way: str) -> None:
    """One start of ImageJ, headless or on the private display; prints its timings as JSON."""
    from epyseg_ij.ij import display, launch, runtime

    timings = {}
    begin = time.perf_counter()
    if way == "private":
        display.start()
        timings["xvfb_s"] = time.perf_counter() - begin
        launch._start(gui=False)
    else:
        runtime.start()
    timings["start_s"] = time.perf_counter() - begin
    begin = time.perf_counter()
    result = launch.execute(MACRO if way == "private" else PLAIN)
    timings["macro_s"] = time.perf_counter() - begin
    timings["ok"] = result.error is None and result.value == "a"
    print(json.dumps(timings))
    sys.stdout.flush()
    launch.end_process(0)


def run_way(way: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "XAUTHORITY")}
    done = subprocess.run(
        [sys.executable, __file__, "--child", way], capture_output=True, text=True, timeout=600, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"{way}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run of each way")
    parser.add_argument("--child", choices=("headless", "private"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return
    repeats = 1 if args.quick else args.repeats
    results = {}
    for way in ("headless", "private"):
        runs = [run_way(way) for _ in range(repeats)]
        results[way] = {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "ok"}
        results[way]["ok"] = all(r["ok"] for r in runs)
    results["extra_start_s"] = results["private"]["start_s"] - results["headless"]["start_s"]
    results["load"] = os.getloadavg()[0]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
