"""``epyseg-ij install-fiji FIJI_DIR``: a user's Fiji (2.17 or later) starts in Python mode with this environment and
has the EPySeg commands; ``--uninstall`` puts back what was there.

What it changes (each file backed up first into ``Fiji.app/config/epyseg-ij/``, written atomically):

- ``plugins/EPySeg_Bridge.jar``: the plug-in, i.e. the Plugins › EPySeg menu and the macro commands;
- ``config/jaunch/fiji.cfg``: ``launch-mode=PYTHON`` and ``python-dir=<this environment>``, the other lines kept;
- ``config/epyseg-ij/install.json``: the values and files it replaced, for ``--uninstall``.

Fiji's launcher (Jaunch) then starts CPython from that environment, whose ``fiji.py`` starts the JVM and pyimagej.
The service is attached lazily: the first EPySeg command runs ``epyseg_ij.ij.attach()`` through Fiji's Python script
language (``epyseg.bridge.FijiPython``), so Fiji starts as fast as before and TensorFlow loads on first use. Running
it again changes nothing more.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

from .. import files
from ..errors import InputError
from .plugin import JAR_NAME, plugin_jar

log = logging.getLogger(__name__)

CFG = Path("config/jaunch/fiji.cfg")
STATE = Path("config/epyseg-ij/install.json")
SETTINGS = ("launch-mode", "python-dir")
NEEDED = ("epyseg-ij", "pyimagej", "scyjava")  # fiji.py imports imagej and scyjava from python-dir's environment
_LIBPYTHON = ("lib/libpython3.so", "lib/libpython3.dylib", "python3.dll")  # what Jaunch looks for in python-dir


@dataclass
class Report:
    """What ``install`` or ``uninstall`` did."""

    changed: list[Path] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def install(fiji_dir: str | os.PathLike, python_dir: str | os.PathLike | None = None) -> Report:
    """Make ``fiji_dir`` start in Python mode with ``python_dir`` (default: this environment) and EPySeg.

    Raises ``InputError`` when ``fiji_dir`` is not a Fiji 2.17+ folder or the environment lacks what Fiji's Python
    mode imports (pyimagej, scyjava) or epyseg-ij itself.
    """
    app = fiji_folder(fiji_dir)
    python = Path(python_dir or sys.prefix).expanduser().resolve()
    report = Report(warnings=check_environment(python))
    with files.locked(_make(app / STATE.parent)):
        state = _read_state(app)
        cfg = app / CFG
        if state is None:
            state = {"settings": _settings(cfg), "cfg_existed": cfg.exists(), "jar_backup": None}
        new = _set(_read_text(cfg), {"launch-mode": "PYTHON", "python-dir": str(python)})
        jar = app / "plugins" / JAR_NAME
        source = plugin_jar()
        if files.require_regular(jar) and files.sha256(jar) != files.sha256(source):
            backup = _replace(jar, source.read_bytes(), app, report)
            state["jar_backup"] = state["jar_backup"] or str(backup)
        elif not jar.is_file():
            _replace(jar, source.read_bytes(), app, report)
        _write_text(cfg, new, app, report)
        _write_state(app, state, report)
    return report


def uninstall(fiji_dir: str | os.PathLike) -> Report:
    """Undo ``install``: the two settings get their old values back (or go), the plug-in jar goes (an older one
    it replaced comes back). Backups are kept."""
    app = fiji_folder(fiji_dir)
    report = Report()
    with files.locked(_make(app / STATE.parent)):
        state = _read_state(app)
        if state is None:
            report.warnings.append(f"epyseg-ij is not installed in {app}: nothing to undo")
            return report
        cfg = app / CFG
        restored = _set(_read_text(cfg), state["settings"])
        if state["cfg_existed"] or restored.strip():
            _write_text(cfg, restored, app, report)
        else:
            _remove(cfg, app, report)
        jar = app / "plugins" / JAR_NAME
        if state["jar_backup"]:
            _replace(jar, files.read_bytes(Path(state["jar_backup"])), app, report)
        else:
            _remove(jar, app, report)
        (app / STATE).unlink()
        report.changed.append(app / STATE)
    return report


def fiji_folder(fiji_dir: str | os.PathLike) -> Path:
    """The Fiji.app folder, checked: ImageJ's jar in ``jars/`` and Jaunch's ``config/jaunch/`` (Fiji 2.17+)."""
    app = Path(fiji_dir).expanduser().resolve()
    if not app.is_dir():
        raise InputError(f"Fiji folder not found: {app}")
    if not any((app / "jars").glob("ij-1*.jar")):
        raise InputError(f"{app} is not a Fiji.app folder: no jars/ij-1.*.jar")
    if not (app / CFG.parent).is_dir():
        raise InputError(f"{app} is a Fiji older than 2.17 (no config/jaunch): update it (Help › Update...) first")
    return app


def check_environment(python: Path) -> list[str]:
    """Warnings about ``python`` as Fiji's Python; ``InputError`` when it lacks a package that Fiji needs."""
    if not python.is_dir():
        raise InputError(f"Python environment not found: {python}")
    found = {
        _canonical(d.metadata["Name"]) for d in metadata.distributions(path=[str(p) for p in _site_packages(python)])
    }
    missing = [name for name in NEEDED if name not in found]
    if missing:
        raise InputError(
            f"the Python environment {python} lacks {', '.join(missing)}, which Fiji's Python mode needs: "
            "install them there with pip install 'epyseg-ij[fiji]'"
        )
    if not any((python / name).is_file() for name in _LIBPYTHON):
        return [
            f"{python} has no {' or '.join(_LIBPYTHON)}, where Fiji's launcher looks for Python; if Fiji starts "
            "without Python mode, use a conda/pixi environment (environment.yml) and install-fiji from there"
        ]
    return []


# ---------------------------------------------------------------------------------------------- fiji.cfg


def _settings(cfg: Path) -> dict[str, str | None]:
    """The current values of our two settings (None: absent), as Fiji's launcher reads them (the last line wins)."""
    values: dict[str, str | None] = dict.fromkeys(SETTINGS)
    for line in _read_text(cfg).splitlines():
        key, sep, value = line.partition("=")
        if sep and key in values:
            values[key] = value
    return values


def _set(text: str, values: dict[str, str | None]) -> str:
    """``text`` with each ``key=value`` line of ``values`` replaced (None: removed), missing ones appended."""
    lines, seen = [], set()
    for line in text.splitlines(keepends=True):
        key, sep, _ = line.partition("=")
        if sep and key in values:
            if values[key] is not None and key not in seen:
                ending = line[len(line.rstrip("\r\n")) :] or "\n"
                lines.append(f"{key}={values[key]}{ending}")
            seen.add(key)
        else:
            lines.append(line)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += [f"{key}={value}\n" for key, value in values.items() if value is not None and key not in seen]
    return "".join(lines)


def _read_text(path: Path) -> str:
    if not files.require_regular(path):
        return ""
    try:
        return files.read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text file in UTF-8: fix or remove it, then run install-fiji again") from None


def _write_text(path: Path, text: str, app: Path, report: Report) -> None:
    if text != _read_text(path) or not path.exists():
        _replace(path, text.encode("utf-8"), app, report)


# -------------------------------------------------------------------------------------------- files, state


def _replace(path: Path, data: bytes, app: Path, report: Report) -> Path | None:
    """Write ``data`` to ``path`` atomically, backing up what was there; the backup's path."""
    backup = None
    if files.require_regular(path):
        backup = files.backup(path, _stamp(), app / STATE.parent)
        report.backups.append(backup)
    _make(path.parent)
    files.atomic_write(path, lambda fh: fh.write(data))
    report.changed.append(path)
    log.info("wrote %s", path)
    return backup


def _remove(path: Path, app: Path, report: Report) -> None:
    if files.require_regular(path):
        report.backups.append(files.backup(path, _stamp(), app / STATE.parent))
        path.unlink()
        report.changed.append(path)


def _read_state(app: Path) -> dict | None:
    path = app / STATE
    if not files.require_regular(path):
        return None
    try:
        state = json.loads(files.read_bytes(path))
        return {k: state[k] for k in ("settings", "cfg_existed", "jar_backup")}
    except (ValueError, KeyError, TypeError):
        raise InputError(
            f"{path} is not epyseg-ij's install record: move it away, then run install-fiji again"
        ) from None


def _write_state(app: Path, state: dict, report: Report) -> None:
    text = json.dumps(state, indent=1, ensure_ascii=False) + "\n"
    path = app / STATE
    if _read_text(path) != text:
        files.atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
        report.changed.append(path)


def _site_packages(python: Path) -> list[Path]:
    return sorted(python.glob("lib/python3*/site-packages")) + [python / "Lib" / "site-packages"]


def _canonical(name: str | None) -> str:
    return (name or "").lower().replace("_", "-")


def _make(folder: Path) -> Path:
    files.make_folder(folder)
    return folder


def _stamp() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}"
