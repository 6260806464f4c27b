"""Argument checks for the doors of public functions: a wrong type or value is one ``InputError`` naming it.

Each check returns the value (converted to a plain Python type) or raises ``error`` (``InputError`` unless given,
e.g. ``ModelError`` for a model card). ``None`` passes when ``optional``. The code behind a door trusts its inputs.

>>> integer("tile", 256, 16, 2048)
256
>>> integer("tile", 64.5, 16, 2048)
Traceback (most recent call last):
...
epyseg_ij.errors.InputError: tile must be an integer from 16 to 2048, got 64.5 (float)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection
from numbers import Integral, Real
from typing import Any

import numpy as np

from .errors import InputError


def integer(
    name: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    optional: bool = False,
    error: type[Exception] = InputError,
) -> int | None:
    """An integer (Python or numpy, not bool) in [minimum, maximum]."""
    if value is None and optional:
        return None
    ok = isinstance(value, Integral) and not isinstance(value, bool | np.bool_)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        _fail(error, name, f"an integer{_range(minimum, maximum)}", value, optional)
    return int(value)


def number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
    below: float | None = None,
    optional: bool = False,
    error: type[Exception] = InputError,
) -> float | None:
    """A finite real number in [minimum, maximum] and in (above, below)."""
    if value is None and optional:
        return None
    ok = isinstance(value, Real) and not isinstance(value, bool | np.bool_) and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    ok = ok and (above is None or value > above) and (below is None or value < below)
    if not ok:
        bounds = _range(minimum, maximum) if above is None and below is None else _open(minimum, maximum, above, below)
        _fail(error, name, f"a finite number{bounds}", value, optional)
    return float(value)


def choice(
    name: str, value: Any, choices: Collection[str], *, optional: bool = False, error: type[Exception] = InputError
) -> str | None:
    """One of ``choices`` (strings)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or value not in choices:
        _fail(error, name, f"one of {', '.join(map(repr, choices))}", value, optional)
    return value


def flag(name: str, value: Any, *, error: type[Exception] = InputError) -> bool:
    """True or False (Python or numpy bool; 1 or 'yes' are refused: they are usually mistakes)."""
    if not isinstance(value, bool | np.bool_):
        _fail(error, name, "True or False", value, False)
    return bool(value)


def text(name: str, value: Any, *, optional: bool = False, error: type[Exception] = InputError) -> str | None:
    """A non-empty string."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        _fail(error, name, "a non-empty string", value, optional)
    return value


def path(name: str, value: Any, *, optional: bool = False) -> str | os.PathLike | None:
    """A file or folder path (str or os.PathLike, not empty)."""
    if value is None and optional:
        return None
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        _fail(InputError, name, "a path (str or pathlib.Path)", value, optional)
    return value


def paths(name: str, value: Any) -> list[str | os.PathLike]:
    """One path or a non-empty sequence of paths, as a list."""
    if isinstance(value, str | os.PathLike):
        return [path(name, value)]
    if not isinstance(value, list | tuple) or not value:
        _fail(InputError, name, "a path or a list of paths", value, False)
    return [path(f"{name}[{i}]", item) for i, item in enumerate(value)]


def function(name: str, value: Any, *, optional: bool = True) -> Callable | None:
    """A callable (``None`` when optional)."""
    if value is None and optional:
        return None
    if not callable(value):
        _fail(InputError, name, "a function", value, optional)
    return value


def instance(
    name: str, value: Any, kind: type | tuple[type, ...], *, optional: bool = True, error: type[Exception] = InputError
) -> Any:
    """An instance of ``kind`` (a type or a tuple of types)."""
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        _fail(error, name, " or ".join(f"a {k.__name__}" for k in kinds), value, optional)
    return value


def _range(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    return f" <= {maximum}" if maximum is not None else ""


def _open(minimum, maximum, above, below) -> str:
    low = f"> {above}" if above is not None else f">= {minimum}" if minimum is not None else ""
    high = f"< {below}" if below is not None else f"<= {maximum}" if maximum is not None else ""
    return " " + " and ".join(b for b in (low, high) if b)


def _fail(error: type[Exception], name: str, expected: str, value: Any, optional: bool) -> None:
    try:
        shown = repr(value)
    except Exception:  # a broken __repr__ must not hide the real message
        shown = object.__repr__(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise error(f"{name} must be {expected}{' or None' if optional else ''}, got {shown} ({type(value).__name__})")
