"""CPU time per megapixel of the shipped network and EPySeg's Linknet-VGG16 on each backend, on the same tiles.

Prints one JSON object; each key holds one figure per network (``default``: the shipped Linknet-ResNet18;
``vgg16 (EPySeg)``: EPySeg's architecture with random weights, which run at the same speed as trained ones):
  tensorflow_s_per_mpix, openvino_s_per_mpix  seconds per megapixel of image (best of 3 after a warm-up) on the 64
                         tiles (288 x 288, batches of 8) that ``segment`` runs for a 2048 x 2048 image
  openvino_speedup       tensorflow / openvino time (target >= 1.3 on CPU)
  max_abs_difference     largest difference between the two backends' outputs on these tiles
  encoder                the network's encoder
The OpenVINO conversion happens before the warm-up and is not timed.
"""

import argparse
import json
import time

import numpy as np

BACKENDS = ("tensorflow", "openvino")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 tiles of 64 px, one run (a smoke run)")
    args = parser.parse_args(argv)
    from epyseg_ij import backends, models

    n, side, repeats = (8, 64, 1) if args.quick else (64, 288, 3)
    tiles = np.random.default_rng(0).random((n, side, side, 1)).astype(np.float32)
    batches = [tiles[i : i + 8] for i in range(0, n, 8)]
    networks = {
        "default": models.load("default"),
        "vgg16 (EPySeg)": models.Model(models.build_linknet("vgg16", 7), models.ModelCard("vgg16"), None),
    }
    mpix = n * 2048 * 2048 / 64 / 1e6  # each 288-px tile yields 256 x 256 px of a 2048-px image
    report: dict[str, dict] = {f"{b}_s_per_mpix": {} for b in BACKENDS}
    report |= {"openvino_speedup": {}, "max_abs_difference": {}, "encoder": {}}
    for name, model in networks.items():
        outputs, seconds = {}, {}
        for backend in BACKENDS:
            run = backends.predictor(model, backend)
            outputs[backend] = run(batches[0])  # warm-up
            seconds[backend] = min(_seconds(lambda run=run: [run(b) for b in batches]) for _ in range(repeats))
            report[f"{backend}_s_per_mpix"][name] = round(seconds[backend] / mpix, 3)
        report["openvino_speedup"][name] = round(seconds["tensorflow"] / seconds["openvino"], 2)
        report["max_abs_difference"][name] = float(f"{np.abs(outputs['tensorflow'] - outputs['openvino']).max():.1e}")
        report["encoder"][name] = model.card.encoder
    print(json.dumps(report))


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
