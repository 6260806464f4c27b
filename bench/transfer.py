"""ImagePlus ⇄ numpy transfer speed and the macro → Python → macro round trip, as one JSON object.

    PYTHONPATH=. .venv/bin/python bench/transfer.py

to_numpy_gbps / to_imageplus_gbps: a 2048×2048 float32 image (16 MiB), median of 30 fresh conversions, in GB/s
(10^9 bytes). macro_roundtrip_ms: one ImageJ macro that calls the Python service (``call(... "ping")``) and gets
its answer back, median of 200, in milliseconds.
"""

import argparse
import json
import statistics
import time

import numpy as np

from epyseg_ij import ij
from epyseg_ij.ij import convert

SIZE = 2048
REPEATS = 30
MACRO_REPEATS = 200


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 px, 3 conversions, 5 round trips (a smoke run)")
    size, repeats, macro_repeats = (256, 3, 5) if parser.parse_args(argv).quick else (SIZE, REPEATS, MACRO_REPEATS)
    ij.start()
    from ij import IJ

    rng = np.random.default_rng(0)
    arrays = [rng.random((size, size), dtype=np.float32) for _ in range(2)]
    nbytes = arrays[0].nbytes
    images = iter([convert.to_imageplus(a) for a in arrays] * repeats)
    sources = iter(arrays * repeats)

    def to_numpy():
        array, _ = convert.to_numpy(next(images))
        assert array.dtype == np.float32

    to_numpy()
    to_np = median_seconds(to_numpy, repeats)
    to_ij = median_seconds(lambda: convert.to_imageplus(next(sources)), repeats)
    check, _ = convert.to_numpy(convert.to_imageplus(arrays[0]))
    assert np.array_equal(check, arrays[0])
    macro = 'return call("epyseg.bridge.PyBridge.call", "ping");'
    assert IJ.runMacro(macro, "") == "pong"
    roundtrip = median_seconds(lambda: IJ.runMacro(macro, ""), macro_repeats)
    print(
        json.dumps(
            {
                "to_numpy_gbps": round(nbytes / to_np / 1e9, 2),
                "to_imageplus_gbps": round(nbytes / to_ij / 1e9, 2),
                "macro_roundtrip_ms": round(roundtrip * 1000, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
