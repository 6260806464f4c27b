"""The GUI of the EPySeg commands: their dialogs and help pages, in words a biologist reads.

A dialog only collects option values, by option key. The command turns them into a macro options string
(``options.format_options``), ``record`` hands that string to ImageJ's Recorder, and the command parses it back:
a recorded ``run("EPySeg Segment", "...")`` line does exactly what the dialog did. The field labels are therefore
free text: the GenericDialog's own recording (the first word of each label) is off while a dialog shows.

Dialogs remember the values of the last run in this session, except folders to write to and ``overwrite``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import Cancelled
from .options import Option, tokenize

EPYSEG = "https://github.com/baigouy/EPySeg"
PAPER = "https://doi.org/10.1242/dev.194589"
LOCAL_DOCS = Path(__file__).resolve().parents[2] / "fiji_scripts" / "README.md"  # in a source checkout

_last: dict[str, dict[str, Any]] = {}  # command -> the values its dialog returned last


class Form:
    """A GenericDialog whose fields stand for option keys; ``show`` returns their values.

    Examples
    --------
    >>> form = Form("EPySeg Segment")  # doctest: +SKIP
    >>> form.choice("tta", "Test-time augmentation", {"none": "none (fastest)", "flip": "8 views"}, "none")
    >>> form.show()  # doctest: +SKIP
    {'tta': 'none'}
    """

    def __init__(self, title: str, remember: Sequence[str] = ()):
        from ij.gui import GenericDialog

        self.title = title
        self.gd = GenericDialog(title)
        self.remember = tuple(remember)
        self._readers: list[tuple[str, Callable[[], Any]]] = []

    def last(self, key: str, default: Any) -> Any:
        """The value of ``key`` at the last OK of this dialog, if remembered, else ``default``."""
        return _last.get(self.title, {}).get(key, default) if key in self.remember else default

    def choice(self, key: str, label: str, items: dict[str, str], default: str) -> None:
        """A drop-down list; ``items`` maps each option value to the words shown."""
        shown = list(items.values())
        self.gd.addChoice(label, shown, items.get(self.last(key, default), shown[0]))
        value_of = {text: value for value, text in items.items()}
        self._readers.append((key, lambda: value_of[str(self.gd.getNextChoice())]))

    def number(self, key: str, label: str, default: float, units: str = "") -> None:
        value = self.last(key, default)
        self.gd.addNumericField(label, value, 0 if float(value).is_integer() else 2, 6, units)
        self._readers.append((key, self._next_number))

    def text(self, key: str, label: str, default: str = "", browse: str = "") -> None:
        """A text field; ``browse`` "folder" or "file" adds a Browse button."""
        value = self.last(key, default)
        if browse == "folder":
            self.gd.addDirectoryField(label, value)
        elif browse == "file":
            self.gd.addFileField(label, value)
        else:
            self.gd.addStringField(label, value, 24)
        self._readers.append((key, lambda: str(self.gd.getNextString()).strip()))

    def flag(self, key: str, label: str, default: bool = False) -> None:
        self.gd.addCheckbox(label, bool(self.last(key, default)))
        self._readers.append((key, lambda: bool(self.gd.getNextBoolean())))

    def words(self, key: str, items: dict[str, str], chosen: Sequence[str], heading: str, columns: int = 2) -> None:
        """Check boxes, one per word of a "words" option (``items`` maps each word to the words shown)."""
        chosen = self.last(key, chosen)
        rows = math.ceil(len(items) / columns)
        self.gd.addCheckboxGroup(rows, columns, list(items.values()), [w in chosen for w in items], [heading])
        self._readers.append((key, lambda: tuple(w for w in items if self.gd.getNextBoolean())))

    def message(self, text: str) -> None:
        self.gd.addMessage(text)

    def help(self, page: str) -> None:
        """A Help button that shows ``page`` (HTML) or opens it (a URL)."""
        self.gd.addHelp(page)

    def show(self) -> dict[str, Any]:
        """Show the dialog and return the option values; ``Cancelled`` when it is not OK'd."""
        with _recorder_paused():
            self.gd.showDialog()
        if not self.gd.wasOKed():  # not wasCanceled(): that aborts the calling macro with ImageJ's own error
            forget_command()
            raise Cancelled(f"{self.title} cancelled")
        values = {key: read() for key, read in self._readers}
        _last[self.title] = {k: v for k, v in values.items() if k in self.remember}
        return values

    def _next_number(self) -> int | float:
        value = float(self.gd.getNextNumber())
        return int(value) if value.is_integer() else value  # NaN (text) and fractions go to the option checks


@contextmanager
def _recorder_paused():
    """No recording by the GenericDialog itself (it would record the first word of each label)."""
    from ij.plugin.frame import Recorder

    field = Recorder.class_.getField("record")  # JPype does not set static fields by assignment
    recording = bool(field.getBoolean(None))
    field.setBoolean(None, False)
    try:
        yield
    finally:
        field.setBoolean(None, recording)


def record(command: str, options: str) -> None:
    """Let the Recorder write ``run(command, options)`` for the command running on this thread."""
    from ij.plugin.frame import Recorder
    from java.lang import Thread

    in_macro = str(Thread.currentThread().getName()).startswith("Run$_")
    if not Recorder.record or (in_macro and not Recorder.recordInMacros):
        return
    Recorder.setCommand(command)  # forgets whatever was recorded for it so far
    pairs = tokenize(options)
    if not pairs:
        Recorder.recordOption(" ")  # run(command, " "): the defaults, without a dialog, as ImageJ records it
    for key, value in pairs:
        if value is None:
            Recorder.recordOption(key)
        else:
            Recorder.recordOption(key, value)


def forget_command() -> None:
    """Record nothing for the command running on this thread (its dialog was cancelled)."""
    from ij.plugin.frame import Recorder

    if Recorder.record:
        Recorder.setCommand(None)


# ------------------------------------------------------------------------------------------------ help pages


def help_page(title: str, intro: str, spec: Sequence[Option], words: dict[str, dict[str, str]]) -> str:
    """An HTML help page: what the command does, then each macro option with its meaning and values."""
    rows = []
    for option in spec:
        meaning = html.escape(option.help or "")
        values = words.get(option.key)
        if values:
            items = "".join(f"<li><code>{html.escape(v)}</code>: {html.escape(t)}</li>" for v, t in values.items())
            meaning += f"<ul>{items}</ul>"
        default = option.default if not isinstance(option.default, tuple) else " ".join(option.default)
        shown = "" if default in ("", None, False) else f" (default <code>{html.escape(str(default))}</code>)"
        rows.append(f"<tr><td valign=top><code>{option.key}</code></td><td>{meaning}{shown}</td></tr>")
    docs = f' and <a href="{LOCAL_DOCS.as_uri()}">{LOCAL_DOCS}</a>' if LOCAL_DOCS.is_file() else ""
    return (
        f"<html><body><h2>{html.escape(title)}</h2><p>{intro}</p>"
        f"<p><b>Macro options</b> (what the Recorder writes):</p><table>{''.join(rows)}</table>"
        f'<p>More: <a href="{EPYSEG}">{EPYSEG}</a> (the EPySeg project), the EPySeg paper '
        f'<a href="{PAPER}">{PAPER}</a>{docs}.</p></body></html>'
    )
