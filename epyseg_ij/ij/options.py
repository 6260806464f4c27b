"""ImageJ macro option strings (``key=value key=[a value] flag``), parsed and checked the same way everywhere.

ImageJ passes ``run("EPySeg Segment", "model=default tta=none output=[labels rois]")`` options to plug-ins as one
string. Headless there is no dialog to parse it, and in the GUI a dialog silently ignores what it does not know, so
every command parses its options here, against a declared list, and refuses unknown keys or values with a message
that says what is allowed. The GUI dialogs produce the same keys (the first word of each field label, lower case),
so what the Recorder writes parses back to the same values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

_TOKEN = re.compile(r"\s*([^\s=\[\]]+)(?:=(\[[^\]]*\]|[^\s\[\]]*))?")
INT_MAX = 2**31 - 1  # ImageJ's numbers are Java ints: the default bound of "int" options


@dataclass(frozen=True)
class Option:
    """One option of a command.

    ``kind`` is "str", "path", "int", "float", "choice", "flag" or "words" (a space-separated subset of
    ``choices``, written ``key=[a b]``; each word is also accepted as a bare flag, which is how a dialog's check
    boxes record it). Numbers are finite and within ``minimum`` and ``maximum`` (for "int", ``INT_MAX`` unless
    given). A "str" or "path" option whose default is not empty cannot be set empty.
    """

    key: str
    kind: str
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""


def tokenize(text: str | None) -> list[tuple[str, str | None]]:
    """Split an ImageJ options string into ``(key, value)`` pairs; ``value`` is None for a bare flag.

    Examples
    --------
    >>> tokenize("model=default output=[labels rois] invert ")
    [('model', 'default'), ('output', 'labels rois'), ('invert', None)]
    """
    text = (text or "").strip()
    if "\0" in text:
        raise InputError("the options contain a NUL character")
    pairs = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise InputError(f"cannot read the options near {text[position:][:30]!r}: use key=value or key=[a value]")
        key, value = match.group(1), match.group(2)
        if value is not None and value.startswith("["):
            value = value[1:-1]
        pairs.append((key.lower(), value))
        position = match.end()
    return pairs


def parse(text: str | None, spec: Sequence[Option], command: str) -> dict[str, Any]:
    """Checked option values by key, defaults filled in; ``InputError`` for anything unknown or invalid.

    Examples
    --------
    >>> spec = [Option("tile", "int", 0, minimum=0), Option("invert", "flag", False)]
    >>> parse("tile=256 invert", spec, "EPySeg Segment")
    {'tile': 256, 'invert': True}
    """
    by_key = {o.key: o for o in spec}
    words = {w: o for o in spec if o.kind == "words" for w in o.choices}
    values: dict[str, Any] = {}
    flagged: dict[str, list[str]] = {}
    try:
        pairs = tokenize(text)
    except InputError as error:
        raise InputError(f"{command}: {error}") from None
    for key, value in pairs:
        if key in by_key:
            option = by_key[key]
            if key in values:
                raise InputError(f"{command}: option '{key}' is given twice")
            values[key] = _value(option, value, command)
        elif key in words and value is None:
            flagged.setdefault(words[key].key, []).append(key)
        else:
            raise InputError(f"{command}: unknown option '{key}'; options are: {describe(spec)}")
    for key, chosen in flagged.items():
        values[key] = tuple(dict.fromkeys(values.get(key, ()) + tuple(chosen)))
    for option in spec:
        values.setdefault(option.key, option.default)
    return values


def _value(option: Option, value: str | None, command: str) -> Any:
    key = option.key
    if option.kind == "flag":
        if value is None or value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise InputError(f"{command}: '{key}' is a flag: write '{key}' alone (or leave it out)")
    empty_allowed = option.kind == "words" or (option.kind in ("str", "path") and not option.default)
    if value is None or (value == "" and not empty_allowed):
        raise InputError(f"{command}: option '{key}' needs a value ({key}=...)")
    if option.kind in ("int", "float"):
        return _number(option, value, command)
    if option.kind == "choice":
        if value.lower() not in option.choices:
            raise InputError(f"{command}: {key}={value!r} is not allowed; choose one of {', '.join(option.choices)}")
        return value.lower()
    if option.kind == "words":
        chosen = tuple(dict.fromkeys(value.replace(",", " ").lower().split()))
        unknown = [w for w in chosen if w not in option.choices]
        if unknown:
            raise InputError(
                f"{command}: {key}=[{value}] has unknown item(s) {', '.join(unknown)}; "
                f"choose from {', '.join(option.choices)}"
            )
        return chosen
    return value


def _number(option: Option, text: str, command: str) -> int | float:
    """A finite number in the option's bounds (a whole one for "int"); ``InputError`` naming the option."""
    key, whole = option.key, option.kind == "int"
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    text = text if len(text) <= 40 else text[:37] + "..."  # in the message
    if math.isnan(number) or (whole and math.isfinite(number) and not number.is_integer()):
        raise InputError(f"{command}: {key}={text!r} is not a {'whole ' if whole else ''}number")
    maximum = INT_MAX if whole and option.maximum is None else option.maximum
    if option.minimum is not None and number < option.minimum:
        raise InputError(f"{command}: {key}={text} is too small (minimum {_plain(option.minimum)})")
    if (maximum is not None and number > maximum) or math.isinf(number):
        limit = f" (maximum {_plain(maximum)})" if maximum is not None else ""
        raise InputError(f"{command}: {key}={text} is too large{limit}")
    return int(number) if whole else number


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def describe(spec: Sequence[Option]) -> str:
    """A one-line summary of the options, for error messages."""
    parts = []
    for o in spec:
        if o.kind == "flag":
            parts.append(o.key)
        elif o.kind == "choice":
            parts.append(f"{o.key}={'|'.join(o.choices)}")
        elif o.kind == "words":
            parts.append(f"{o.key}=[{' '.join(o.choices)}]")
        else:
            parts.append(f"{o.key}=<{o.kind}>")
    return " ".join(parts)


def format_options(values: dict[str, Any], spec: Sequence[Option]) -> str:
    """The canonical options string for values (what ``parse`` reads back); defaults are left out.

    Examples
    --------
    >>> spec = [Option("model", "str", "default"), Option("output", "words", ("labels",), ("labels", "rois"))]
    >>> format_options({"model": "my model", "output": ("labels", "rois")}, spec)
    'model=[my model] output=[labels rois]'
    """
    parts = []
    for o in spec:
        value = values.get(o.key, o.default)
        if value == o.default or value is None:
            continue
        if o.kind == "flag":
            parts.append(o.key if value else "")
        elif o.kind == "words":
            parts.append(f"{o.key}=[{' '.join(value)}]")
        else:
            text = str(value)
            parts.append(f"{o.key}=[{text}]" if (" " in text or not text) else f"{o.key}={text}")
    return " ".join(p for p in parts if p)
