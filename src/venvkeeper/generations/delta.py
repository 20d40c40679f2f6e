"""The steps around a clone (:mod:`venvkeeper.generations.clone`): start it from a checked manifest, and
after the delta's install, drop the bytecode it made stale (the smoke check then compiles every module
left without any). (What the lock no longer installs: :mod:`venvkeeper.generations.dropped`, which
needs packaging's markers.)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from venvkeeper.core import progress
from venvkeeper.generations import clone as cloning
from venvkeeper.generations import identity
from venvkeeper.generations.layout import Layout
from venvkeeper.generations.manifest import Manifest, read_manifest, source_of

__all__ = ["drop_stale_bytecode", "empty", "start"]


def _source_manifest(layout: Layout, number: int) -> tuple[Manifest, str | None]:
    """Generation ``number``'s manifest, as sealed (its sha256 must be the one its record holds), and
    the directory its record says it was built at (what its scripts name)."""
    state = layout.read_state(number)
    path = layout.manifest_file(number)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise cloning.CloneRefusedError(f"{path}: cannot be read ({exc.strerror})") from None
    if state is None or hashlib.sha256(raw).hexdigest() != state.manifest_sha256:
        raise cloning.CloneRefusedError(f"{path}: does not match the sha256 in its generation record")
    try:
        return read_manifest(raw), state.directory
    except ValueError as exc:
        raise cloning.CloneRefusedError(f"{path}: {exc}") from None


def start(
    layout: Layout, number: int, env_dir: Path, linked: Mapping[str, int] | None = None
) -> cloning.Clone:
    """Clone generation ``number`` into ``env_dir`` (raises CloneRefusedError, ``env_dir`` then empty).
    ``linked``: the ctimes a clone of the same generation just left (path -> ctime right after its own
    link, :attr:`Clone.link_ctimes`), explained like those of venvkeeper's own unlinks."""
    with progress.step(f"cloning generation {number}"):
        manifest, named = _source_manifest(layout, number)
        explained = {**identity.explained_ctimes(layout, number), **(linked or {})}
        try:
            cloned = cloning.clone(layout.gen_dir(number), manifest, env_dir, explained, named)
        except cloning.CloneRefusedError:
            empty(env_dir)
            raise
        except OSError as exc:
            # A hard link refused (another filesystem, fs.protected_hardlinks, an inode's link limit), or
            # a file unreadable: building from nothing still works.
            empty(env_dir)
            raise cloning.CloneRefusedError(f"{exc.filename or env_dir}: {exc.strerror or exc}") from None
    # Our own links moved the live generation's ctimes: explained, so that removing this generation
    # again (a failed build, a hook's roll-back) or the next prune does not cost a hash of each.
    identity.explain(layout, number, cloned.link_ctimes)
    return cloned


def empty(env_dir: Path) -> None:
    """Remove what a refused clone left, keeping the directory (the caller builds into it)."""
    for root, dirs, files in os.walk(env_dir, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)


def drop_stale_bytecode(env_dir: Path, cloned: cloning.Clone) -> None:
    """Unlink each linked ``.pyc`` whose source the delta replaced or removed: it no longer describes
    what would run. (CPython would check the source's mtime and size, but a rebuilt wheel may carry
    both unchanged: SOURCE_DATE_EPOCH.)"""
    for path in list(cloned.bytecode):
        source = cloned.linked.get(source_of(path))
        try:
            same = source is not None and os.lstat(env_dir / source_of(path)).st_ino == source.ino
        except FileNotFoundError:
            same = False
        if not same:
            (env_dir / path).unlink(missing_ok=True)
            del cloned.bytecode[path]
