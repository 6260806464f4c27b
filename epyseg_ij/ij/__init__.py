"""The ImageJ side of epyseg-ij: ImageJ 1.x (or Fiji) running inside this Python process, with the EPySeg service.

>>> from epyseg_ij import ij
>>> ij.start()                                         # doctest: +SKIP
>>> ij.run_macro('newImage("t", "16-bit ramp", 256, 256, 1); '
...              'run("EPySeg Segment", "model=default output=[labels results]");')   # doctest: +SKIP

In a JVM that someone else started (Fiji's Python mode, ``imagej.init``), ``ij.attach()`` registers the service.

Modules: ``runtime`` (start or attach to the JVM), ``jars`` (ImageJ's jars, the JDK), ``plugin`` (the plug-in jar),
``install`` (``epyseg-ij install-fiji``), ``service`` (the dispatcher and its worker thread), ``commands`` (the macro
commands, one module each), ``options`` (macro option strings), ``convert`` (ImagePlus ⇄ numpy, ROIs, Results),
``launch`` (running macros and Jython scripts; the ``epyseg-ij macro`` and ``epyseg-ij fiji`` commands), ``display``
(the private invisible display of headless macros). The per-cell measurements are ``epyseg_ij.measure`` (no JVM).
"""

from .launch import MacroResult, end_process, execute, open_gui, read_macro, run_macro, run_macro_file
from .runtime import ImageJ, attach, current, start
from .service import Reply, Service
from .service import get as get_service

__all__ = [
    "start",
    "attach",
    "current",
    "ImageJ",
    "get_service",
    "Service",
    "Reply",
    "run_macro",
    "execute",
    "MacroResult",
    "read_macro",
    "run_macro_file",
    "open_gui",
    "end_process",
]
