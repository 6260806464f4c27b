"""epyseg-ij and EPySeg 0.1.52 side by side: same weights, same images, each with its own pipeline.

Two image sets with reference segmentations: held-out synthetic epithelia (a generator style not used to train the
default model) and the 8 EpiTools wing-disc frames. Each run happens in a fresh process on a fresh copy of the images
and writes Tissue Analyzer masks, which are then scored against the references:

- ``epyseg``: EPySeg's own prediction with its defaults (13-pass test-time augmentation, default post-processing),
  run in a separate venv (``make epyseg-venv``; Python 3.11 needs ``--no-deps --ignore-requires-python``);
- ``epyseg-ij``: ``segment`` at its defaults (no test-time augmentation);
- ``epyseg-ij-tta``: ``segment --tta epyseg``, the same 13 passes as EPySeg.

Times exclude imports and building the network (both sides) and include everything else (tiling, first-call tracing,
prediction, post-processing, writing). Prints one JSON object.

Usage: python bench/epyseg_side_by_side.py [--model default] [--epyseg-python .venv-epyseg/bin/python] [--n 6]
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
import tifffile

REPO = Path(__file__).resolve().parents[1]
EPITOOLS = REPO.parent / "shared" / "data" / "epitools_wingdisc" / "derived"


def image_sets(folder: Path, n: int) -> dict[str, tuple[Path, dict[str, np.ndarray]]]:
    """{set name: (folder of images, {image stem: reference labels})}."""
    from epyseg_ij.synth import HELDOUT, synth_epithelium

    sets = {}
    heldout = folder / "heldout"
    heldout.mkdir(parents=True)
    references = {}
    for i in range(n):
        sample = synth_epithelium((512, 512), seed=(9000, i), style=HELDOUT)
        tifffile.imwrite(heldout / f"heldout_{i}.tif", sample.image, imagej=True)
        references[f"heldout_{i}"] = sample.labels
    sets["heldout_synthetic"] = (heldout, references)
    if EPITOOLS.exists():
        epitools = folder / "epitools"
        epitools.mkdir()
        references = {}
        for path in sorted((EPITOOLS / "images").glob("frame_*.tif")):
            shutil.copy(path, epitools / path.name)
            references[path.stem] = tifffile.imread(EPITOOLS / "labels" / path.name)
        sets["epitools_wingdisc"] = (epitools, references)
    return sets


def run_epyseg_ij(folder: Path, model: str, tta: str) -> dict:
    """Child process: load the model, then time segment_files over the folder."""
    from epyseg_ij import models
    from epyseg_ij.batch import find_images, segment_files

    network = models.load(model)
    start = time.perf_counter()
    segment_files(find_images([folder]), model=network, tta=tta)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def child(command: list[str]) -> dict:
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode:
        raise RuntimeError(f"{command[:3]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def score(folder: Path, references: dict[str, np.ndarray]) -> dict:
    from epyseg_ij.metrics import evaluate

    masks = {stem: tifffile.imread(folder / stem / "handCorrection.tif") for stem in references}
    scores = [evaluate(masks[stem], gt) for stem, gt in references.items()]
    inner = [evaluate(masks[stem], gt, exclude_border=True) for stem, gt in references.items()]
    mean = {key: round(float(np.mean([s[key] for s in scores])), 4) for key in ("seg_quality", "pixel_iou")}
    return mean | {"inner_seg_quality": round(float(np.mean([s["seg_quality"] for s in inner])), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--epyseg-python", default=str(REPO / ".venv-epyseg" / "bin" / "python"))
    parser.add_argument("--n", type=int, default=6, help="held-out synthetic images (512 x 512)")
    parser.add_argument("--child", nargs=3, metavar=("FOLDER", "MODEL", "TTA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_epyseg_ij(Path(args.child[0]), args.child[1], args.child[2])))
        return
    from epyseg_ij import models

    weights = models.resolve(args.model)
    encoder = models.read_card(weights).encoder
    report = {"model": args.model, "encoder": encoder, "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (images, references) in image_sets(Path(tmp), args.n).items():
            mpix = sum(gt.size for gt in references.values()) / 1e6
            runs = {
                "epyseg": [
                    args.epyseg_python,
                    "bench/epyseg_reference.py",
                    str(weights),
                    "{folder}",
                    "--backbone",
                    encoder,
                ],
                "epyseg-ij": [sys.executable, __file__, "--child", "{folder}", str(weights), "none"],
                "epyseg-ij-tta": [sys.executable, __file__, "--child", "{folder}", str(weights), "epyseg"],
            }
            results = {}
            for run, command in runs.items():
                folder = Path(tmp) / f"{name}-{run}"
                shutil.copytree(images, folder)
                measured = child([part.replace("{folder}", str(folder)) for part in command])
                results[run] = {
                    "s_per_mpix": round(measured["seconds"] / mpix, 2),
                    "peak_rss_mb": measured["peak_rss_mb"],
                    **score(folder, references),
                }
            results["speedup_default"] = round(results["epyseg"]["s_per_mpix"] / results["epyseg-ij"]["s_per_mpix"], 1)
            results["speedup_tta"] = round(results["epyseg"]["s_per_mpix"] / results["epyseg-ij-tta"]["s_per_mpix"], 1)
            report["sets"][name] = {"images": len(references), "mpix": round(mpix, 3), **results}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
