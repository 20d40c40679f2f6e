"""Turning a package directory (a pip ``--target`` directory, a venv without pyvenv.cfg) into a venv.

Nothing is reinstalled: ``uv venv --allow-existing`` adds the venv's own files around what the
directory holds, a ``--target`` directory's distributions move into ``lib/pythonX.Y/site-packages``,
and the scripts are pointed at the new ``bin/python``. Every step can be undone.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from venvkeeper.core import files as fsutil
from venvkeeper.core.lazy import lazy
from venvkeeper.doctor.backup import Backup, replace_file
from venvkeeper.doctor.envfacts import Facts
from venvkeeper.doctor.result import Action
from venvkeeper.doctor.rewrite import rewrite_paths, update_records

if TYPE_CHECKING:
    from venvkeeper.generations import engine
else:  # uv's gateway: not loaded by a heal that has nothing to convert
    engine = lazy("venvkeeper.generations.engine")

__all__ = ["convert", "undo_convert"]

# What `uv venv --allow-existing` writes besides the venv itself. In a user's package directory
# (~/.local, a platform's .pythonlibs) a CACHEDIR.TAG makes backup tools skip it and a .gitignore
# of "*" hides it from git: a user's own copy is put back, uv's is removed.
_UV_MARKERS = (".gitignore", "CACHEDIR.TAG", ".lock")


def _move_flat(facts: Facts, minor: str, backup: Backup) -> None:
    """A pip --target directory: its distributions (by RECORD) go to lib/pythonX.Y/site-packages."""
    site = f"lib/python{minor}/site-packages"
    made_lib = not os.path.lexists(f"{facts.root}/lib")
    os.makedirs(f"{facts.root}/{site}", exist_ok=True)
    tops: set[str] = set()
    for name in facts.flat_dists:
        tops.add(name)
        with (
            contextlib.suppress(OSError),
            open(f"{facts.root}/{name}/RECORD", newline="", encoding="utf-8") as fh,
        ):
            for row in csv.reader(fh):
                if row and row[0] and not row[0].startswith(("/", "..")):
                    top = row[0].split("/", 1)[0]
                    if top not in ("bin", "lib", "__pycache__"):
                        tops.add(top)
    for top in sorted(tops):
        if os.path.lexists(f"{facts.root}/{top}"):
            os.rename(f"{facts.root}/{top}", f"{facts.root}/{site}/{top}")
            backup.moved.append((top, f"{site}/{top}"))
    if made_lib:
        backup.created.append("lib")
    # RECORD names the scripts relative to the --target directory (bin/tinyweb); from site-packages
    # they are ../../../bin/tinyweb, as in any venv.
    for name in facts.flat_dists:
        record = f"{site}/{name}/RECORD"
        try:
            with open(f"{facts.root}/{record}", newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
        except OSError:
            continue
        for row in rows:
            if row and row[0].startswith("bin/"):
                row[0] = f"../../../{row[0]}"
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        backup.save(record)
        replace_file(f"{facts.root}/{record}", out.getvalue().encode())


def convert(facts: Facts, action: Action, backup: Backup) -> list[str]:
    """Carry out a ``convert`` action; returns the scripts rewritten (relative paths)."""
    minor = str(action.data["minor"])
    if action.data["flat"]:
        _move_flat(facts, minor, backup)
    before = set(_listdir(facts.root)) | {f"bin/{n}" for n in _listdir(f"{facts.root}/bin")}
    # Whatever uv may overwrite is saved first.
    for rel in sorted(before):
        if rel in (*_UV_MARKERS, "pyvenv.cfg") or rel.startswith(("bin/activate", "bin/python", "bin/pydoc")):
            backup.save(rel)
    engine.create_venv(Path(facts.root), str(action.data["python"]), allow_existing=True)
    after = set(_listdir(facts.root)) | {f"bin/{n}" for n in _listdir(f"{facts.root}/bin")}
    backup.created += sorted(after - before)  # removed again if the heal is undone
    for rel in _UV_MARKERS:
        if rel in backup.saved:
            backup.put_back(rel)
        elif rel in after - before:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{facts.root}/{rel}")
            backup.created.remove(rel)
    shebangs = {
        f"bin/{s.name}": (s.interpreter, f"{facts.root}/bin/python")
        for s in facts.scripts
        if s.interpreter in facts.places
    }
    changed = rewrite_paths(
        facts.root, Action("rewrite-paths", "bin", "", shebangs=shebangs, activates={}), backup
    )
    update_records(facts.root, changed, backup)
    return changed


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def undo_convert(facts: Facts, backup: Backup) -> None:
    """Saved files back first (some live inside moved directories), then the moves, then uv's files."""
    for rel in backup.saved:
        os.replace(f"{backup.dir}/{rel}", f"{facts.root}/{rel}")
    backup.saved.clear()
    for original, moved in reversed(backup.moved):
        os.rename(f"{facts.root}/{moved}", f"{facts.root}/{original}")
    backup.moved.clear()
    for rel in sorted(backup.created, reverse=True):
        fsutil.remove_tree(Path(facts.root) / rel)
    backup.created.clear()
    backup.discard()
