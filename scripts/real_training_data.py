"""Write the real images that the default model trains on, in the Tissue Analyzer layout, into one folder.

What trains and what stays out (``bench/real_quality.py`` scores the held-out parts on their own):

- Ishihara junctions: the left half (x < 201, with the dimmest region) trains; the right half is held out.
- EpiTools wing disc: frames 6 and 7 train, their unsegmented border region (label 1) as ``ignore.tif``; frames
  0-5 are held out (``bench/finetune_gain.py`` corrects frames 0 and 1 and scores frames 2-5).
- PlantSeg's ovule: held out (plant tissue, scored as an extra).

Usage: python scripts/real_training_data.py OUT_FOLDER
"""

import sys
from pathlib import Path

import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from finetune_gain import write_corrections  # noqa: E402
from real_quality import EPITOOLS_TRAINED, ISHIHARA, ISHIHARA_SPLIT  # noqa: E402  (one place for the split)


def main(out: Path) -> None:
    from epyseg_ij import io

    image = tifffile.imread(ISHIHARA / "junctions.tif")
    mask = tifffile.imread(ISHIHARA / "junctions" / "handCorrection.tif")
    io.write_tiff(out / "ishihara_left.tif", image[:, :ISHIHARA_SPLIT])
    io.write_tiff(out / "ishihara_left" / "handCorrection.tif", mask[:, :ISHIHARA_SPLIT])
    write_corrections(out, list(EPITOOLS_TRAINED), crop=None)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
