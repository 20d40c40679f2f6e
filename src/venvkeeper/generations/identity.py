"""Removing generations without spoiling the live one's recorded identities.

A clone links a file only while its identity is the sealed one, ctime included
(:mod:`venvkeeper.generations.clone`). But generations share inodes, and unlinking any name of an
inode moves its ctime: every prune would make the next deploy hash the whole live generation again
(measured on examples/webapp: 970 of 984 files). So venvkeeper removes a generation file by file, and
for an inode the live generation shares it checks the ctime *before* its own unlink: when it is still
the one sealed (or explained before), the new ctime right after is this unlink's doing, and is recorded
in ``ctimes/NNNN.json`` beside the state. A ctime that had already moved is not explained: that file
is hashed by the next clone, as any other.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from venvkeeper.core import files as fsutil
from venvkeeper.generations.layout import Layout
from venvkeeper.generations.manifest import Manifest, SealedFile, read_manifest

__all__ = ["explain", "explained_ctimes", "prune", "remove", "remove_clones"]


def explained_ctimes(layout: Layout, number: int) -> dict[str, int]:
    """Generation ``number``'s ctimes moved by venvkeeper's own unlinks since its seal (path -> ctime)."""
    try:
        with open(layout.ctimes_file(number), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {str(p): int(c) for p, c in data.items()} if isinstance(data, dict) else {}


def explain(layout: Layout, number: int, ctimes: dict[str, int]) -> None:
    """Record ``ctimes`` (path -> ctime right after venvkeeper linked that file elsewhere, having checked
    its identity just before) as explained for generation ``number``."""
    _write(layout, number, {**explained_ctimes(layout, number), **ctimes})


def _write(layout: Layout, number: int, explained: dict[str, int]) -> None:
    path = layout.ctimes_file(number)
    try:
        path.parent.mkdir(exist_ok=True)
        fsutil.atomic_write_json(path, dict(sorted(explained.items())), compact=True)
    except OSError:
        pass  # only a saving: without it the next clone hashes these files


def _live_manifest(layout: Layout, live: int) -> Manifest | None:
    try:
        return read_manifest(layout.manifest_file(live).read_bytes())
    except (OSError, ValueError):
        return None


class _Witness:
    """The live generation's sealed files by inode, and the ctime each is expected to have now."""

    def __init__(self, layout: Layout, live: int, manifest: Manifest) -> None:
        self.root = str(layout.gen_dir(live))
        self.dev = manifest.dev
        sealed: dict[str, SealedFile] = {**manifest.files, **manifest.bytecode}
        self.by_ino = {f.ino: (p, f) for p, f in sealed.items() if f.ino}
        self.explained = explained_ctimes(layout, live)
        self.changed = False

    def unlink(self, path: str, st: os.stat_result) -> None:
        hit = self.by_ino.get(st.st_ino) if st.st_dev == self.dev else None
        if hit is None:
            os.unlink(path)
            return
        rel, sealed = hit
        expected = self.explained.get(rel, sealed.ctime_ns)
        ours = (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (sealed.size, sealed.mtime_ns, expected)
        os.unlink(path)
        if ours:
            try:
                after = os.lstat(f"{self.root}/{rel}")
            except FileNotFoundError:
                return
            if after.st_ino == st.st_ino:
                self.explained[rel] = after.st_ctime_ns
                self.changed = True


def _unlink_files(directory: str, witness: _Witness) -> None:
    """Unlink the files of ``directory`` that share an inode (the rest goes with the tree)."""
    stack = [directory]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if st.st_nlink > 1 and stat.S_ISREG(st.st_mode):
                    try:
                        witness.unlink(entry.path, st)
                    except OSError:
                        continue  # a read-only directory: remove_tree makes it writable and goes on


def remove(layout: Layout, numbers: Iterable[int], live: int | None) -> None:
    """Remove these generations (never ``live``), explaining the ctimes their unlinks move in ``live``."""
    manifest = _live_manifest(layout, live) if live is not None else None
    witness = _Witness(layout, live, manifest) if manifest is not None and live is not None else None
    for number in numbers:
        if witness is not None and number != live:
            # The record first, as Layout.remove_generation does: a crash leaves an incomplete generation.
            for path in (layout.state_file(number), layout.manifest_file(number)):
                path.unlink(missing_ok=True)
            _unlink_files(str(layout.gen_dir(number)), witness)
        layout.remove_generation(number)
    if witness is not None and live is not None:
        _save(layout, live, witness)


def _save(layout: Layout, live: int, witness: _Witness) -> None:
    if witness.changed:
        _write(layout, live, witness.explained)


def remove_clones(layout: Layout, directories: Sequence[Path], live: int, linked: Mapping[str, int]) -> None:
    """Remove directories of hard links into generation ``live`` that are not generations (update's
    test environments), explaining the ctimes their unlinks move in ``live``, as :func:`remove` does.
    ``linked``: the ctimes their own links left in ``live`` (path -> ctime right after the link,
    :attr:`Clone.link_ctimes`): each is the expected one before the unlink, never taken on trust."""
    manifest = _live_manifest(layout, live)
    if manifest is not None:
        witness = _Witness(layout, live, manifest)
        witness.explained.update(linked)
        witness.changed = bool(linked)
        for directory in directories:
            _unlink_files(str(directory), witness)
        _save(layout, live, witness)
    for directory in directories:
        fsutil.remove_tree(directory)


def prune(layout: Layout, keep: int) -> list[int]:
    """:meth:`Layout.prune`, explaining the live generation's moved ctimes (see the module docstring)."""
    doomed = layout.doomed(keep)
    remove(layout, doomed, layout.current_number())
    return doomed
