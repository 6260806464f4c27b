"""Do the synthetic training images look like real epithelia? Image statistics of both, as one JSON object.

For an image and its reference outlines, ``tissue_stats`` measures:

- ``cell_diameter``: median equivalent diameter of the cells off the border (px), and ``size_spread``, the spread
  of their log areas (interquartile range);
- ``junction_width``: full width at half maximum of the mean intensity profile across junctions (px);
- ``snr``: junction peak above the cell interior, over the pixel noise (the interior's residual after smoothing);
- ``contrast_range``: how junction contrast varies across the field: 90th / 10th percentile of the contrast of
  blocks of about four cells;
- ``spectrum_slope``: log-log slope of the image's radially averaged power spectrum between 1/32 and 1/4 cycles/px.

The real images (``../shared/data``) are compared with ``--n`` samples of the training generator (``VARIED``): the
output lists, per statistic, the synthetic range (2nd-98th percentiles) and every real value, and ``covered`` is true
when each real value lies inside its range.

Usage: python bench/synth_realism.py [--n 60] [--quick]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_quality import real_sets  # noqa: E402

STATS = ("cell_diameter", "size_spread", "junction_width", "snr", "contrast_range", "spectrum_slope")


def tissue_stats(image: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """The statistics above for one image and its reference (outline mask or labels)."""
    from epyseg_ij.metrics import as_labels

    labels = as_labels(reference)
    image = image.astype(np.float64)
    boundary = labels == 0
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    areas = np.bincount(labels.ravel())[1:]
    areas[edge[edge > 0] - 1] = 0  # cells cut by the border are not cell sizes
    areas = areas[areas > 0]
    distance = ndi.distance_transform_edt(~boundary)
    bins = np.minimum(np.rint(distance), 12).astype(int)
    reach = int(bins.max()) + 1
    profile = ndi.mean(image, bins, index=np.arange(reach))
    interior = float(np.median(profile[min(4, reach - 1) :]))
    half = interior + (profile[0] - interior) / 2
    below = np.flatnonzero(profile < half)
    if len(below):  # the half-maximum crossing, between the last bin above half and the first below
        k = below[0]
        width = 2 * (k - 1 + (profile[k - 1] - half) / (profile[k - 1] - profile[k])) + 1
    else:
        width = 2.0 * reach
    inside = distance > 3
    noise = float(np.std((image - ndi.gaussian_filter(image, 1.5))[inside])) + 1e-9
    return {
        "cell_diameter": float(np.median(2 * np.sqrt(areas / np.pi))),
        "size_spread": float(np.subtract(*np.percentile(np.log(areas), (75, 25)))),
        "junction_width": width,
        "snr": float((profile[0] - interior) / noise),
        "contrast_range": _contrast_range(image, boundary, inside, areas),
        "spectrum_slope": _spectrum_slope(image),
    }


def _contrast_range(image, boundary, inside, areas) -> float:
    block = int(np.clip(4 * np.sqrt(np.median(areas)), 16, min(image.shape) // 2))
    contrasts = []
    for y in range(0, image.shape[0] - block + 1, block):
        for x in range(0, image.shape[1] - block + 1, block):
            window = (slice(y, y + block), slice(x, x + block))
            if boundary[window].sum() > block and inside[window].sum() > block:
                contrasts.append(image[window][boundary[window]].mean() - image[window][inside[window]].mean())
    contrasts = np.clip(contrasts, 1e-3 * np.ptp(image) + 1e-9, None)
    return float(np.percentile(contrasts, 90) / np.percentile(contrasts, 10)) if len(contrasts) > 1 else 1.0


def _spectrum_slope(image) -> float:
    power = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    fy, fx = np.meshgrid(*(np.fft.fftshift(np.fft.fftfreq(n)) for n in image.shape), indexing="ij")
    radius = np.hypot(fy, fx)
    bands = np.geomspace(1 / 32, 1 / 4, 9)
    centres = np.sqrt(bands[1:] * bands[:-1])
    means = [power[(radius >= lo) & (radius < hi)].mean() for lo, hi in zip(bands[:-1], bands[1:], strict=True)]
    return float(np.polyfit(np.log(centres), np.log(means), 1)[0])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="synthetic samples")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--quick", action="store_true", help="8 small samples (a smoke run)")
    args = parser.parse_args(argv)
    from epyseg_ij.synth import VARIED, synth_epithelium

    n, size = (8, 160) if args.quick else (args.n, args.size)
    synthetic = [
        tissue_stats(s.image, s.labels) for s in (synth_epithelium((size, size), (77, i), VARIED) for i in range(n))
    ]
    found, missing = real_sets(quick=False)
    real = {f"{k}/{name}": tissue_stats(image, ref) for k, items in found.items() for name, image, ref in items}
    report = {"n_synthetic": n, "missing": missing, "stats": {}}
    for stat in STATS:
        low, high = np.percentile([s[stat] for s in synthetic], (2, 98))
        values = {name: round(v[stat], 3) for name, v in real.items()}
        outside = [name for name, v in values.items() if not low <= v <= high]
        report["stats"][stat] = {"synthetic_range": [round(low, 3), round(high, 3)], "real": values, "outside": outside}
    report["covered"] = not any(s["outside"] for s in report["stats"].values())
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
