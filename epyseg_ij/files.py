"""Safe file primitives that every writer uses, so that no file is half-written, replaced by surprise or lost.

- ``require_regular``: only regular files (or links to them) are read, replaced or backed up; a folder, FIFO, device
  or broken link where a file is expected is refused with one line;
- ``prepared``/``put``: a new hidden temporary file beside the target, flushed to disk, then renamed onto it; without
  ``overwrite`` the rename is a hard link, which fails if the target appeared in the meantime; ``put_folder`` does
  the same for a folder written in full beside its target (a Zarr group);
- ``backup``: a copy under a new, unique name, created exclusively (it never replaces anything) and verified;
- ``locked``: one writer at a time for the files of a folder, across threads and processes (``filelock``);
- ``file_error``: an ``OSError`` as one line that names the file and says so when the disk is full.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import filelock

from .errors import InputError

LOCK = ".epyseg_ij.lock"
LOCK_TIMEOUT = 300.0  # s: a writer holds the lock for the time it takes to write one mask
_CHUNK = 1 << 20
_FULL = {getattr(errno, n) for n in ("ENOSPC", "EFBIG", "EDQUOT") if hasattr(errno, n)}
_NO_HARD_LINKS = {
    getattr(errno, n) for n in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "EXDEV", "EMLINK", "ENOSYS") if hasattr(errno, n)
}
_KINDS = (
    (stat.S_ISDIR, "folder"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
    (stat.S_ISSOCK, "socket"),
)


def file_error(error: OSError, path: os.PathLike, action: str = "write") -> InputError:
    """One line for an ``OSError`` on ``path``: "the disk is full" for ENOSPC/EFBIG and for short writes."""
    if error.errno in _FULL or "requested and" in str(error):  # numpy's short write: "65536 requested and 32 written"
        return InputError(f"cannot {action} {path}: the disk is full (or the file is over the size limit)")
    return InputError(f"cannot {action} {path}: {error.strerror or error}")


def kind(path: os.PathLike) -> str | None:
    """None if nothing is at ``path``, ``"file"`` for a regular file (or a link to one), else what is there."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "broken link" if os.path.islink(path) else None
    except OSError as error:
        raise file_error(error, path, "read") from None
    except ValueError:  # a NUL character
        raise InputError(f"{str(path)!r} is not a valid file name") from None
    if stat.S_ISREG(mode):
        return "file"
    return next((name for test, name in _KINDS if test(mode)), "special file")


def require_regular(path: os.PathLike) -> bool:
    """True if a regular file is at ``path``, False if nothing is; ``InputError`` for anything else."""
    found = kind(path)
    if found not in (None, "file"):
        raise InputError(f"{path} is a {found}, not a regular file: refused (move it away)")
    return found == "file"


def sha256(path: os.PathLike) -> str:
    """The SHA-256 of a file's bytes (read in chunks)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as error:
        raise file_error(error, path, "read") from None


def read_bytes(path: os.PathLike, limit: int = -1) -> bytes:
    """The bytes of a file (at most ``limit`` from its start)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError as error:
        raise file_error(error, path, "read") from None


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise file_error(error, folder, "create the folder") from None
    except ValueError:  # a NUL character
        raise InputError(f"{str(folder)!r} is not a valid folder name") from None


@contextmanager
def prepared(dest: Path, write: Callable[[BinaryIO], None]) -> Iterator[Path]:
    """A new temporary file beside ``dest``, filled by ``write`` and flushed to disk; removed unless ``put``."""
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            with open(tmp, "xb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as error:
            raise file_error(error, dest) from None
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def put(tmp: Path, dest: Path, overwrite: bool) -> None:
    """Rename a prepared file onto ``dest``; without ``overwrite``, refuse if ``dest`` exists (even if it just came)."""
    try:
        if overwrite:
            os.replace(tmp, dest)
        else:
            _link_new(tmp, dest)
    except FileExistsError:
        raise InputError(f"{dest} exists: kept (use --overwrite to replace it)") from None
    except OSError as error:
        raise file_error(error, dest) from None
    _sync_folder(dest.parent)


def put_folder(tmp: Path, dest: Path, overwrite: bool = False) -> None:
    """Rename a complete folder (a Zarr group) onto ``dest``. Without ``overwrite`` nothing is replaced; with it, the
    old folder is moved aside, the new one renamed in, and only then is the old one deleted."""
    old = None
    if os.path.lexists(dest):
        if not overwrite:
            raise InputError(f"{dest} exists: kept (use --overwrite to replace it)")
        if not os.path.isdir(dest) or os.path.islink(dest):
            raise InputError(f"{dest} is not a folder: refused (move it away)")
        old = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.old")
    try:
        if old is not None:
            os.rename(dest, old)
        os.rename(tmp, dest)  # onto a folder that appeared meanwhile: fails unless it is empty
    except OSError as error:
        if old is not None and not os.path.lexists(dest):
            os.rename(old, dest)
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise InputError(f"{dest} exists: kept (use --overwrite to replace it)") from None
        raise file_error(error, dest) from None
    _sync_folder(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write(dest: Path, write: Callable[[BinaryIO], None], overwrite: bool = True) -> None:
    """Write ``dest`` through a temporary file: readers see the old file or the complete new one, never a part."""
    require_regular(dest)
    with prepared(dest, write) as tmp:
        put(tmp, dest, overwrite)


def backup(path: Path, stamp: str, folder: Path | None = None) -> Path:
    """Copy ``path`` to a new ``<stem>.<stamp>[-N]<suffix>`` beside it (or in ``folder``), checked against the
    original's SHA-256."""
    folder = path.parent if folder is None else folder
    for n in range(1000):
        copy = folder / f"{path.stem}.{stamp}{f'-{n}' if n else ''}{path.suffix}"
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            raise file_error(error, copy, f"back up {path.name} as") from None
        break
    else:
        raise InputError(f"cannot back up {path}: 1000 backups with the time stamp {stamp} exist")
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            digest = hashlib.sha256()
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(path, copy)
        if sha256(copy) != digest.hexdigest() or copy.stat().st_size != path.stat().st_size:
            raise InputError(f"the backup {copy} differs from {path}: nothing was replaced")
    except BaseException as error:
        copy.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise file_error(error, copy, f"back up {path.name} as") from None
        raise
    return copy


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the folder's lock file (``.epyseg_ij.lock``): one epyseg-ij writer at a time, in any thread or process."""
    lock = filelock.FileLock(folder / LOCK, timeout=LOCK_TIMEOUT)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise InputError(f"{folder} is being written by another epyseg-ij run (waited {LOCK_TIMEOUT:.0f} s)") from None
    except OSError as error:
        raise file_error(error, folder / LOCK, "lock") from None
    try:
        yield
    finally:
        lock.release()


def _link_new(tmp: Path, dest: Path) -> None:
    try:
        os.link(tmp, dest)  # fails with FileExistsError if dest exists: no window in which it could be replaced
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(dest):  # a file system without hard links: check, then rename
            raise FileExistsError(dest) from None
        os.replace(tmp, dest)
    else:
        tmp.unlink()


def _sync_folder(folder: Path) -> None:
    """Make a rename durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
