"""EPySeg for Appose hosts (a Fiji plug-in built on appose-java, or any Appose program): segment, measure and train
as tasks of a worker process of their own.

Images come and go as shared-memory ``appose.NDArray`` objects in C order (``(Y, X)``, ``(Z, Y, X)``...: appose-java
sends C-order shapes); progress goes to ``task.update(message, current, maximum)``; the host's ``task.cancel()``
stops a job at its next progress report. A bad input fails the task with one line (``InputError: ...``); anything
else fails it with Appose's traceback. The host disposes of the NDArrays it receives.

``SCRIPTS`` holds the task script of each command; any Appose Python worker of an environment with epyseg-ij runs
them (``pixi.toml`` in the jar builds one). ``python -m epyseg_ij.worker`` is such a worker that imports numpy and
TensorFlow before it reads its first request (numpy must be imported first on Windows: appose#23).

>>> service = appose.wrap(env_dir).python().init("import numpy")                  # doctest: +SKIP
>>> task = service.task(SCRIPTS["segment"], {"image": image, "model": "default"})  # doctest: +SKIP
>>> task.wait_for().outputs["labels"].ndarray()                                    # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import Cancelled, EpysegError, InputError, first_line

OUTPUTS = ("labels", "outlines", "bonds")


def segment(task, image, model: str | None = None, outputs: Sequence[str] = ("labels", "outlines"), **options) -> dict:
    """``epyseg_ij.segment`` on an NDArray, with its options (``axes``, ``channel``, ``tta``, ``tile``...); outputs:
    the chosen ``labels``/``outlines``/``bonds`` NDArrays, ``axes`` (of the outputs), ``cells`` (in all) and
    ``cells_per_plane``."""
    from .pipeline import segment as engine_segment

    unknown = sorted(set(outputs) - set(OUTPUTS))
    if isinstance(outputs, str) or unknown:
        raise InputError(f"outputs must be a list of {', '.join(OUTPUTS)}; got {outputs!r}")
    result = engine_segment(_array(image, "image"), model, progress=_progress(task, "segment"), **options)
    shared = {name: _shared(getattr(result, name)) for name in outputs}
    return {**shared, "axes": result.axes, "cells": int(sum(result.n_cells)), "cells_per_plane": result.n_cells}


def measure(task, labels, spacing: Sequence[float] = (1.0, 1.0)) -> dict[str, Any]:
    """Per-cell measurements (``epyseg_ij.measure``) of a label image or a Tissue Analyzer outline mask (0/255), 2D or
    a stack of planes; output ``table``: column name → list (``Slice`` from 1 for stacks)."""
    from .measure import as_labels, cell_table

    array = _array(labels, "labels")
    if array.ndim not in (2, 3):
        raise InputError(f"labels must be 2D (Y, X) or a stack (N, Y, X), got shape {array.shape}")
    planes = as_labels(array).reshape(-1, *array.shape[-2:])
    table: dict[str, list] = {}
    for index, plane in enumerate(planes):
        task.update(f"measure: plane {index + 1}/{len(planes)}", index, len(planes))
        columns = cell_table(plane, spacing=(float(spacing[0]), float(spacing[1])))
        if array.ndim == 3:
            columns = {"Slice": np.full(len(columns["Label"]), index + 1), **columns}
        for name, values in columns.items():
            table.setdefault(name, []).extend(values.tolist())
    return {"table": table, "cells": len(table.get("Label", []))}


def train(task, data: str | Sequence[str], name: str, **options) -> dict[str, Any]:
    """``epyseg_ij.train`` on folders (Tissue Analyzer layout or image/mask pairs), with its options (``base``,
    ``encoder``, ``epochs``, ``tile``...); outputs: ``path`` of the saved model, ``best_epoch`` and ``history`` (one
    summary line per epoch). One progress update per step."""
    from .training import train as engine_train

    def on_step(done: int, total: int) -> None:
        task.update(f"train {name}: step {done}/{total}", done, total)

    def cancel() -> bool:
        return bool(task.cancel_requested)

    folders = [data] if isinstance(data, str) else list(data)
    result = engine_train(folders, name, on_step=on_step, cancel=cancel, **options)
    return {
        "path": str(result.path),
        "best_epoch": int(result.best_epoch),
        "history": [report.summary() for report in result.history],
    }


TASKS: dict[str, Callable[..., dict[str, Any]]] = {"segment": segment, "measure": measure, "train": train}
SCRIPTS = {name: f"import epyseg_ij.worker\nepyseg_ij.worker.run(task, {name!r}, globals())\n" for name in TASKS}


def run(task, command: str, scope: Mapping[str, Any]) -> None:
    """Run ``command`` for an Appose task: its inputs are the task script's globals (``scope``)."""
    handler = TASKS[command]
    try:
        parameters = list(inspect.signature(handler).parameters.values())[1:]
        missing = [p.name for p in parameters if p.default is inspect.Parameter.empty and p.kind != p.VAR_KEYWORD]
        missing = [name for name in missing if name not in scope]
        if missing:
            raise InputError(f"{command}: missing input {', '.join(missing)}")
        names = [p.name for p in parameters if p.kind != p.VAR_KEYWORD] + _engine_options(command)
        task.outputs.update(handler(task, **{name: scope[name] for name in names if name in scope}))
    except Cancelled:
        task.cancel()
        _no_completion(task)
    except EpysegError as error:
        task.fail(f"{type(error).__name__}: {first_line(error)}")
        _no_completion(task)


def _no_completion(task) -> None:
    """Appose's worker (0.12) reports completion when the script returns, even after the task reported its failure
    or cancellation; that second line can interleave with another task's output and garble both, so it is dropped."""
    task._report_completion = lambda: None


def _engine_options(command: str) -> list[str]:
    """The options a task passes on to its engine function: that function's parameters, less what the task sets."""
    if command == "segment":
        from .pipeline import segment as engine

        own = {"image", "model", "progress"}
    elif command == "train":
        from .training import train as engine

        own = {"data_folders", "name", "on_epoch", "on_step", "cancel"}
    else:
        return []
    return [name for name in inspect.signature(engine).parameters if name not in own]


def _array(value, name: str) -> np.ndarray:
    """The numpy view of an input NDArray (no copy)."""
    if not callable(getattr(value, "ndarray", None)):
        raise InputError(f"{name} must be an appose NDArray, got {type(value).__name__}")
    return value.ndarray()


def _shared(array: np.ndarray):
    """A new shared-memory NDArray holding ``array``; the host disposes of it."""
    from appose import NDArray

    shared = NDArray(str(array.dtype), list(array.shape))
    shared.ndarray()[...] = array
    return shared


def _progress(task, what: str) -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        task.update(f"{what}: {done}/{total} tiles", done, total)
        if task.cancel_requested:
            raise Cancelled(f"{what} cancelled")

    return progress


def main() -> None:
    """``python -m epyseg_ij.worker``: Appose's Python worker, with numpy and TensorFlow loaded before the first
    request."""
    from appose import python_worker

    from ._tf import tf

    tf()  # its start-up messages go to stderr; stdout carries the Appose protocol
    python_worker.main()


if __name__ == "__main__":
    main()
