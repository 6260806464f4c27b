"""The ImageJ side of epyseg-ij: ImageJ 1.x (or Fiji) running inside this Python process, with the EPySeg service.

>>> from epyseg_ij import ij
>>> ij.start()                                         # doctest: +SKIP
>>> ij.run_macro('newImage("t", "16-bit ramp", 256, 256, 1); '
...              'run("EPySeg Segment", "model=default output=[labels results]");')   # doctest: +SKIP

Modules: ``runtime`` (start the JVM), ``service`` (the dispatcher and its worker thread), ``commands`` (the macro
commands), ``options`` (macro option strings), ``convert`` (ImagePlus ⇄ numpy, ROIs, Results), ``measure`` (per-cell
measurements), ``launch`` (the ``epyseg-ij macro`` and ``epyseg-ij fiji`` commands).
"""

from .launch import end_process, open_gui, run_macro, run_macro_file
from .runtime import ImageJ, current, start
from .service import Reply, Service
from .service import get as get_service

__all__ = [
    "start",
    "current",
    "ImageJ",
    "get_service",
    "Service",
    "Reply",
    "run_macro",
    "run_macro_file",
    "open_gui",
    "end_process",
]
