"""epyseg-ij: EPySeg-compatible segmentation of epithelia for Fiji/ImageJ macros, Jython and the command line.

>>> import epyseg_ij
>>> result = epyseg_ij.segment(image)  # doctest: +SKIP
>>> reports = epyseg_ij.segment_files(["movie/"], client=dask_client)  # doctest: +SKIP
>>> epyseg_ij.train(["corrected/"], "wing-v2", base="default", epochs=20)  # doctest: +SKIP
"""

from .batch import segment_files
from .errors import Cancelled, CheckpointError, DivergedError, EpysegError, InputError, ModelError
from .pipeline import Segmentation, segment
from .training import train

__version__ = "0.1.0"
__all__ = [
    "segment",
    "Segmentation",
    "segment_files",
    "train",
    "EpysegError",
    "InputError",
    "ModelError",
    "CheckpointError",
    "DivergedError",
    "Cancelled",
    "__version__",
]
