"""Small filesystem operations that must be atomic or careful."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "copy_files",
    "exchange",
    "remove_tree",
    "replace_symlink",
]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, data: Any, *, compact: bool = False) -> str:
    """Write JSON atomically (see :func:`atomic_write_bytes`); returns the sha256 of the bytes.

    ``compact`` drops the indentation (large files).
    """
    if compact:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    else:
        text = json.dumps(data, indent=2, sort_keys=True)
    raw = (text + "\n").encode()
    atomic_write_bytes(path, raw)
    return hashlib.sha256(raw).hexdigest()


def atomic_write_bytes(path: Path, raw: bytes, *, mode: int = 0o644) -> None:
    """Write to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600; state is for monitoring tools too
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def replace_symlink(link: Path, target: str, *, scratch: Path) -> None:
    """Point ``link`` at ``target`` atomically: a new symlink renamed over the old one.

    The new link is made in ``scratch`` (same filesystem, swept by the next run), never beside
    ``link``, so a run killed between the two steps leaves nothing in the user's directory.
    """
    tmp = scratch / f"link-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(link.parent)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step with renameat2(RENAME_EXCHANGE); False when the system cannot.

    This is how a plain directory at --env becomes a symlink without --env ever missing: rename(2)
    cannot replace a non-empty directory with a symlink.
    """
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        _fsync_dir(a.parent)
        if b.parent != a.parent:
            _fsync_dir(b.parent)
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def remove_tree(path: Path) -> None:
    """Remove a file, symlink or directory tree; a missing path is fine."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    elif path.exists():
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_make_writable_and_retry)
        else:  # onerror is deprecated from 3.12 on
            shutil.rmtree(path, onerror=_make_writable_and_retry)


def _make_writable_and_retry(func: Any, path: str, _exc: object) -> None:
    # A read-only directory inside a generation (some wheels ship 0555 trees) must not stop the
    # cleanup: removing an entry needs write access to its directory, never to the file itself. A
    # file's mode is not touched: generations share inodes, so it is the live generation's mode too.
    parent = os.path.dirname(path)
    os.chmod(parent, 0o700)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
    func(path)


def copy_files(src_root: Path, dst_root: Path, files: Iterable[str]) -> None:
    """Copy the listed files (relative paths) from ``src_root`` to ``dst_root``, keeping modes.

    Symlinks are copied as symlinks. Directories are created as needed.
    """
    made: set[Path] = set()
    for name in files:
        src = src_root / name
        dst = dst_root / name
        if dst.parent not in made:
            dst.parent.mkdir(parents=True, exist_ok=True)
            made.add(dst.parent)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
