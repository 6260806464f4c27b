"""Where the network runs: TensorFlow (CPU or GPU) or OpenVINO (CPU), behind one function ``batch -> outputs``.

``auto`` is OpenVINO when it is installed and TensorFlow sees no GPU, TensorFlow otherwise; training always runs on
TensorFlow. OpenVINO runs the Keras network converted by ``openvino.convert_model``, in float32 (the same numbers as
TensorFlow to about 1e-5). The compiled model of a model file is cached under ``<home>/openvino/``, named by the
SHA-256 of the file and OpenVINO's version: later starts import it, without converting again and without building
the Keras network (nor importing TensorFlow where only its CPU build is installed). A network without a file is
converted once per ``models.Model``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np

from . import checks, files, models
from ._tf import tf
from .errors import EpysegError, InputError, first_line

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorflow", "openvino")
OPENVINO_PIN = "openvino==2026.4.1"  # as in pyproject.toml's cpu extra
DEVICE = "CPU"
CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}  # CPUs with bf16 units would otherwise round activations to bf16

Predictor = Callable[[np.ndarray], np.ndarray]

_lock = threading.Lock()


def check(backend: str) -> str:
    """``backend`` if it can run here, before any work: ``InputError`` for an unknown name, or for ``"openvino"``
    when OpenVINO cannot be imported."""
    checks.choice("backend", backend, BACKENDS)
    if backend == "openvino" and openvino() is None:
        raise InputError(f"backend 'openvino' needs OpenVINO, which is not installed: pip install {OPENVINO_PIN}")
    return backend


def choose(backend: str = "auto") -> str:
    """The backend that runs ``backend``: ``"tensorflow"`` or ``"openvino"`` (see ``check`` for the errors).

    Examples
    --------
    >>> choose("tensorflow")
    'tensorflow'
    """
    if check(backend) == "auto":
        return "openvino" if openvino() is not None and not gpu_visible() else "tensorflow"
    return backend


def openvino() -> ModuleType | None:
    """The ``openvino`` module, or None when it cannot be imported."""
    try:
        import openvino as ov
    except ImportError:
        return None
    return ov


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU; answered without importing it when only its CPU build is installed."""
    if "tensorflow" not in sys.modules and not _installed("tensorflow") and _installed("tensorflow-cpu"):
        return False
    return bool(tf().config.list_physical_devices("GPU"))


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def load(
    model: str | os.PathLike | models.Model | None, backend: str = "auto"
) -> tuple[models.Model, Predictor | None]:
    """``models.load(model)`` and its network on ``backend`` (None for the classical baseline).

    On OpenVINO, a model file whose compiled model is cached is not built in TensorFlow.
    """
    network = models.load(model, build=False)
    if network.classical:
        return network, None
    if choose(backend) == "tensorflow" or network.path is None or not cache_path(network.path).is_file():
        network.build()  # and check its weights, before any work
    return network, predictor(network, backend)


def predictor(model: models.Model, backend: str = "auto") -> Predictor:
    """The network of ``model`` on ``backend``: float32 batches (N, H, W, 1) to outputs (N, H, W, C).

    H and W are multiples of 32. The first OpenVINO call for a model converts it (or imports it from the cache).
    """
    if choose(backend) == "tensorflow":
        return model.predict_batch
    with _lock:  # concurrent macros convert a model once
        if "openvino" not in model.compiled:
            model.compiled["openvino"] = _compile(model)
    compiled = model.compiled["openvino"]

    def run(batch: np.ndarray) -> np.ndarray:
        try:
            return compiled.create_infer_request().infer({0: batch})[0]
        except (RuntimeError, MemoryError) as error:
            if isinstance(error, RuntimeError) and "alloc" not in str(error):
                raise
            raise InputError(
                f"out of memory running the network on {batch.shape[0]} tiles of {batch.shape[2]}x{batch.shape[1]} "
                "px: use a smaller tile or batch"
            ) from None

    return run


def release(model: models.Model) -> None:
    """Free the buffers the backends keep between calls of ``model``'s network (OpenVINO's, about 170 MB for the
    default network at batch 8); the next call allocates them again (0.1 s)."""
    for compiled in model.compiled.values():
        compiled.release_memory()


def cache_path(model_file: Path) -> Path:
    """Where the OpenVINO model compiled from ``model_file`` is cached (by content, not name)."""
    stat = model_file.stat()
    version = openvino().__version__.split("-")[0]
    name = f"{_sha256(model_file, stat.st_mtime_ns, stat.st_size)}-openvino{version}-{DEVICE.lower()}-f32.blob"
    return models.home() / "openvino" / name


@lru_cache(maxsize=8)
def _sha256(path: Path, mtime_ns: int, size: int) -> str:
    return files.sha256(path)


def _compile(model: models.Model):
    """The OpenVINO compiled model of ``model``: imported from the cache, or converted (and cached)."""
    ov = openvino()
    core = ov.Core()
    cache = cache_path(model.path) if model.path is not None else None
    if cache is not None and cache.is_file():
        try:
            compiled = core.import_model(files.read_bytes(cache), DEVICE, CONFIG)
            log.info("imported the OpenVINO model of %s from %s", model.name, cache)
            return compiled
        except (EpysegError, RuntimeError) as error:  # unreadable, truncated or from another OpenVINO build
            log.warning("cannot use the cached OpenVINO model %s (%s): converting again", cache, first_line(error))
    compiled = core.compile_model(ov.convert_model(model.keras), DEVICE, CONFIG)
    log.info("converted model %s to OpenVINO", model.name)
    if cache is not None:
        try:
            files.make_folder(cache.parent)
            files.atomic_write(cache, lambda fh: fh.write(compiled.export_model().getbuffer()))
        except EpysegError as error:  # a cache that cannot be written costs time, not results
            log.warning("cannot cache the OpenVINO model: %s", error)
    return compiled
