"""The classical baseline, no network: a ridge filter for bonds, as Tissue Analyzer-style tools do.

Membranes are bright ridges; the Sato tubeness filter at 1-2 px scales finds them whatever their brightness, and the
ridge map is scaled so that its Otsu threshold falls at 0.5. The usual post-processing (seeded watershed) follows.
"""

import numpy as np
from skimage.filters import sato, threshold_otsu

from .predict import Intensity


def ridge_bonds(plane: np.ndarray, intensity: Intensity) -> np.ndarray:
    """Bond likelihood in [0, 1] (float32) of a whole plane, 0.5 at the ridge map's Otsu threshold."""
    ridges = sato(intensity(plane), sigmas=(1, 2), black_ridges=False, mode="reflect").astype(np.float32)
    if not ridges.any():
        return ridges
    cut = threshold_otsu(ridges)
    return np.clip(ridges / (2 * cut), 0, 1) if cut > 0 else ridges
