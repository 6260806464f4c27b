"""The EPySeg commands of ImageJ, one module each: Segment, Measure, Train, Models, and the small ones (``info``).

Each command is a function ``(Request, Service) -> Reply``, registered with the service by ``@command(name)``, that
runs on the caller's thread: it parses the options (``options.parse``, identical headless and in the GUI; a
dialog (``dialogs.Form``) when a GUI user runs it from the menu, whose values are recorded as an options string that
parses back), reads the image, hands the heavy work to ``Service.compute`` (the worker thread) and then shows or
returns the results. Importing this package registers them all.

Macro use::

    run("EPySeg Segment", "model=default tta=none channel=1 output=[labels outlines rois results]");
    n = call("epyseg.bridge.PyBridge.call", "segment", "model=default output=[labels]");
"""

from . import info, measure, models, segment, train
from ._results import Cells, glasbey_lut
from .measure import MEASURE_OPTIONS
from .segment import OUTPUTS, SEGMENT_OPTIONS
from .train import TRAIN_OPTIONS

__all__ = [
    "info",
    "measure",
    "models",
    "segment",
    "train",
    "Cells",
    "glasbey_lut",
    "MEASURE_OPTIONS",
    "OUTPUTS",
    "SEGMENT_OPTIONS",
    "TRAIN_OPTIONS",
]
