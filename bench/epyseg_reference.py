"""EPySeg 0.1.52's own prediction on a folder, with given Linknet weights. Runs in the EPySeg bench venv.

EPySeg's defaults, as its GUI and pyTA use them: 256-px tiles with 32 px of overlap, min-max normalisation, no
outlier clipping, test-time augmentation 'mean' over all its augmentations (13 passes) and its default post-processing
("default (slow/robust)"); results in Tissue Analyzer layout beside the images. Prints one JSON object:
{"seconds": ..., "peak_rss_mb": ..., "images": ...}.

Usage (from bench/epyseg_side_by_side.py): .venv-epyseg/bin/python bench/epyseg_reference.py WEIGHTS.h5 FOLDER
    [--backbone resnet18] [--no-tta]
"""

import argparse
import datetime
import json
import random
import resource
import time
from pathlib import Path

_seed = random.seed


def _seed_compatible(a=None, version=2):
    """EPySeg seeds `random` with a datetime, which Python >= 3.11 refuses (why it declares Python < 3.11)."""
    return _seed(a.timestamp() if isinstance(a, datetime.datetime) else a, version)


random.seed = _seed_compatible


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("folder")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--no-tta", action="store_true")
    args = parser.parse_args()

    from epyseg.deeplearning.deepl import EZDeepLearning

    deep = EZDeepLearning()
    deep.load_or_build(
        architecture="Linknet", backbone=args.backbone, activation="sigmoid", classes=7, model_weights=args.weights
    )
    settings = {
        "input_channel_of_interest": None,
        "default_input_tile_width": 256,
        "default_input_tile_height": 256,
        "default_output_tile_width": 256,
        "default_output_tile_height": 256,
        "tile_width_overlap": 32,
        "tile_height_overlap": 32,
        "hq_pred_options": "Use all augs (pixel preserving + deteriorating) (Recommended for segmentation)",
        "post_process_algorithm": "default (slow/robust) (epyseg pre-trained model only!)",
        "input_normalization": {
            "method": "Rescaling (min-max normalization)",
            "range": [0, 1],
            "individual_channels": True,
        },
        "filter": None,
    }
    start = time.perf_counter()
    generator = deep.get_predict_generator(
        inputs=[args.folder],
        input_shape=deep.get_inputs_shape(),
        output_shape=deep.get_outputs_shape(),
        clip_by_frequency=None,
        **settings,
    )
    deep.predict(
        generator,
        deep.get_outputs_shape(),
        predict_output_folder="TA_mode",
        batch_size=1,
        hq_predictions=None if args.no_tta else "mean",
        **settings,
    )
    seconds = time.perf_counter() - start
    images = len([p for p in Path(args.folder).iterdir() if p.suffix == ".tif"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak), "images": images}))


if __name__ == "__main__":
    main()
