"""Replay: synthetic epithelia mixed into fine-tuning, so that a network fine-tuned on a few corrected images keeps
what it knew about other tissue (without it, fine-tuning on 2 wing-disc frames cost 0.16 SEG on held-out synthetic
styles, ``bench/finetune_gain.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import augment, targets
from .data import TrainingImage

IMAGES, SIZE = 16, 256  # the replay set: images of at most SIZE x SIZE px, one style drawn from synth.VARIED each
FINE_TUNING = 0.25  # the default share of replay tiles when fine-tuning a base model
REPLAY_SEED = 7171  # keeps replay images apart from other synthetic sets


def synthetic_images(normalization: str, tile: int, seed: int = 0, n: int = IMAGES) -> list[TrainingImage]:
    """``n`` synthetic epithelia (``synth.VARIED``) of twice the training ``tile`` (at most ``SIZE``) px, normalised
    as ``segment`` normalises images for the model."""
    size = min(SIZE, 2 * tile)
    from .predict import intensity_range
    from .synth import VARIED, synth_epithelium

    images = []
    for i in range(n):
        sample = synth_epithelium((size, size), seed=(REPLAY_SEED, seed, i), style=VARIED)
        normalised = intensity_range(sample.image, normalization, False)(sample.image)
        packed = targets.packed_targets(sample.outlines)
        images.append(TrainingImage(f"replay_{i}", augment.prepare(normalised, sample.outlines, packed)))
    return images


def mix(images: Sequence[TrainingImage], replay: Sequence[TrainingImage], share: float) -> list[TrainingImage]:
    """``images`` and ``replay`` together, ``replay`` weighted so that ``share`` of the tiles come from it."""
    if share <= 0 or not replay:
        return list(images)
    mass = sum(im.shape[0] * im.shape[1] * im.weight for im in images)
    replay_area = sum(im.shape[0] * im.shape[1] for im in replay)
    weight = share / (1 - share) * mass / replay_area
    for im in replay:
        im.weight = weight
    return [*images, *replay]
