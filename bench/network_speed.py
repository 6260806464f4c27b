"""CPU time per megapixel of the shipped model's network against EPySeg's Linknet-VGG16, on the same tiles.

Prints one JSON object: seconds per megapixel of image for each network (best of 3, after a warm-up), on the 64
tiles (288 x 288, batches of 8) that ``segment`` runs for a 2048 x 2048 image.
"""

import argparse
import json
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 tiles of 64 px, one run (a smoke run)")
    args = parser.parse_args(argv)
    from epyseg_ij import models

    n, side, repeats = (8, 64, 1) if args.quick else (64, 288, 3)
    tiles = np.random.default_rng(0).random((n, side, side, 1)).astype(np.float32)
    networks = {
        "default": models.load("default"),
        "vgg16 (EPySeg)": models.Model(models.build_linknet("vgg16", 7), models.ModelCard("vgg16"), None),
    }
    report = {}
    for name, model in networks.items():
        model.predict_batch(tiles[:8])
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(0, len(tiles), 8):
                model.predict_batch(tiles[i : i + 8])
            runs.append(time.perf_counter() - start)
        report[name] = {"encoder": model.card.encoder, "s_per_mpix": round(min(runs) / (n * 2048 * 2048 / 64 / 1e6), 3)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
