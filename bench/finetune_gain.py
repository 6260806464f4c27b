"""Does fine-tuning on a few corrected frames help, as biologists use it? One JSON object.

The correction loop on the EpiTools wing disc: the references of 2 frames stand for a biologist's corrections
(Tissue Analyzer layout; their unsegmented border region, which EpiTools leaves as one label, goes to an
``ignore.tif`` so it gets no loss). ``default`` is fine-tuned on them as ``epyseg-ij train --from default`` does
(10 epochs of 15 steps of 4 tiles of 192 px, a quarter of them replayed synthetic epithelia: under 10 minutes on
a 2-core CPU; the time is reported), then the other frames and the held-out synthetic set are scored before and
after (SEG, also on inner cells). The frames that the default model trained on (``real_quality.EPITOOLS_TRAINED``)
are not scored: 4 frames are, by default.

Usage: python bench/finetune_gain.py [--epochs 10] [--frames 0 1] [--quick]
``--quick`` fine-tunes a few steps on small crops (a smoke run, seconds).
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_quality import EPITOOLS, EPITOOLS_TRAINED, score  # noqa: E402

BORDER_LABEL = 1  # EpiTools' unsegmented border region


def write_corrections(folder: Path, frames: list[int], crop: int | None) -> None:
    """Frames and their reference masks in the TA layout, the unsegmented border region as ``ignore.tif``."""
    from epyseg_ij import io
    from epyseg_ij.metrics import as_outlines

    for i in frames:
        image = tifffile.imread(EPITOOLS / "images" / f"frame_{i:02d}.tif")[:crop, :crop]
        labels = tifffile.imread(EPITOOLS / "labels" / f"frame_{i:02d}.tif")[:crop, :crop]
        io.write_tiff(folder / f"frame_{i:02d}.tif", image)
        io.write_tiff(folder / f"frame_{i:02d}" / "handCorrection.tif", as_outlines(labels))
        io.write_tiff(folder / f"frame_{i:02d}" / "ignore.tif", (labels == BORDER_LABEL).astype(np.uint8) * 255)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of 15 steps of 4 tiles (default: 10)")
    parser.add_argument("--frames", type=int, nargs="+", default=[0, 1], help="the corrected frames")
    parser.add_argument("--replay", type=float, help="share of replayed synthetic tiles (default: train's, 0.25)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    import epyseg_ij
    from epyseg_ij.synth import HELDOUT, synth_epithelium

    crop = 96 if args.quick else None
    others = [i for i in range(8) if i not in (*args.frames, *EPITOOLS_TRAINED)][: 1 if args.quick else None]
    frames = [
        (f"frame_{i:02d}", tifffile.imread(EPITOOLS / "images" / f"frame_{i:02d}.tif")[:crop, :crop],
         tifffile.imread(EPITOOLS / "labels" / f"frame_{i:02d}.tif")[:crop, :crop])
        for i in others
    ]  # fmt: skip
    size, n = (96, 1) if args.quick else (512, 4)
    heldout = [
        (f"h{i}", s.image, s.labels)
        for i, s in enumerate(synth_epithelium((size, size), (9000, i), HELDOUT) for i in range(n))
    ]
    before = {
        "epitools_others": score("default", frames, "none"),
        "synthetic_heldout": score("default", heldout, "none"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EPYSEG_IJ_HOME"] = str(Path(tmp) / "home")
        data = Path(tmp) / "corrected"
        write_corrections(data, args.frames, crop)
        start = time.perf_counter()
        result = epyseg_ij.train(
            [data], "wing-finetuned", base="default", epochs=1 if args.quick else args.epochs,
            steps_per_epoch=2 if args.quick else 15, tile=96 if args.quick else 192, batch=4, val_fraction=0,
            learning_rate=1e-4, patience=None, seed=0, **({} if args.replay is None else {"replay": args.replay}),
        )  # fmt: skip
        train_minutes = (time.perf_counter() - start) / 60
        after = {
            "epitools_others": score(result.path, frames, "none"),
            "synthetic_heldout": score(result.path, heldout, "none"),
        }
    report = {
        "corrected_frames": args.frames,
        "scored_frames": others,
        "train_minutes": round(train_minutes, 2),
        "cpu": platform.processor() or platform.machine(),
        "epochs_done": len(result.history),
        "replay": result.card.provenance.get("replay"),
        "before": before,
        "after": after,
        "gain": {k: round(after[k]["seg_quality"] - before[k]["seg_quality"], 4) for k in before},
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
