#!/bin/sh
# The recipe of the default model shipped as epyseg_ij/data/default.h5: data, commands, seeds. Run from the repository
# root (about 2 h on a 2-core CPU). A finished stage is skipped; to continue an interrupted stage, run again with
# RESUME=--resume. Nothing here is committed but the final float16 model: data and checkpoints stay in $WORK.
set -eu
WORK=${WORK:-build/default-model}
BIN=${BIN:-.venv/bin}
export EPYSEG_IJ_HOME="$WORK/home"

# 4 synthetic styles x 40 images of 512 x 512 px with exact ground truth (the "heldout" style is kept for testing).
seed=100
for style in default thick small large; do
    [ -e "$WORK/data/$style/synth_000.tif" ] ||
        "$BIN/epyseg-ij" synth "$WORK/data/$style" --n 40 --size 512 512 --seed $seed --style $style
    seed=$((seed + 1))
done

DATA="$WORK/data/default $WORK/data/thick $WORK/data/small $WORK/data/large"
MODELS="$EPYSEG_IJ_HOME/models"
# Stage 1: a Linknet with a ResNet-18 encoder (11.5 M parameters: 23 MB in float16), EPySeg's 7 outputs, 30 x 100
# steps at Adam's default rate.
[ -e "$MODELS/default-r18.h5" ] ||
    "$BIN/epyseg-ij" train --data $DATA --encoder resnet18 --name default-r18 --epochs 30 --steps 100 --tile 256 \
        --batch 8 --val-fraction 0.1 --patience 0 --seed 0 ${RESUME:-}
# Stage 2: 30 x 100 more steps from stage 1 at a third of the rate, in bfloat16 (3x faster on this CPU).
[ -e "$MODELS/default-r18-ft.h5" ] ||
    "$BIN/epyseg-ij" train --data $DATA --from default-r18 --name default-r18-ft --epochs 30 --steps 100 --tile 256 \
        --batch 8 --val-fraction 0.1 --learning-rate 3e-4 --patience 0 --seed 1 --precision mixed_bfloat16 ${RESUME:-}

# Ship the best epoch in float16 under the name "default".
"$BIN/python" - <<'PY'
import dataclasses
from epyseg_ij import models

trained = models.load("default-r18-ft")
card = dataclasses.replace(
    trained.card,
    name="default",
    provenance={
        **trained.card.provenance,
        "description": "epyseg-ij's default model: Linknet-resnet18, EPySeg's 7 outputs, trained on synthetic epithelia",
        "recipe": "scripts/train_default_model.sh",
    },
)
print(models.save_model(trained.keras, models.shipped_model_path(), card, dtype="float16"))
PY
