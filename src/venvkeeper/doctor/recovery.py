"""One heal at a time per directory, and what a heal killed half-way left beside the environment.

A rebuild renames the old environment to ``.NAME.heal-old-PID`` and the new one into place; a file
repair keeps the originals in ``.NAME.heal-backup-PID``. The next heal finishes the job of one whose
process is gone before it looks at the environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from venvkeeper.core import files as fsutil

__all__ = ["parent_locked", "recover"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(env: str) -> str | None:
    """Finish what a heal killed half-way left beside ``env``; returns a directory kept, if any.

    Killed in between, the old environment is put back (or, when the new one is already in place,
    kept beside it).
    """
    kept = None
    # The leftovers are named after the directory itself, which a symlinked --env leads to.
    for place in dict.fromkeys([os.path.abspath(env), os.path.realpath(env)]):
        kept = _recover_at(place) or kept
    return kept


def _recover_at(absolute: str) -> str | None:
    parent, name = os.path.split(absolute)
    if not os.path.isdir(parent):
        return None
    pattern = re.compile(rf"\.{re.escape(name)}\.heal-(old|new|backup)-(\d+)")
    kept = None
    for entry in sorted(os.listdir(parent)):
        match = pattern.fullmatch(entry)
        if match is None or _alive(int(match.group(2))):
            continue
        path = f"{parent}/{entry}"
        if match.group(1) == "new":
            fsutil.remove_tree(Path(path))
        elif match.group(1) == "old":
            if os.path.lexists(absolute):
                kept = f"{parent}/{name}.before-heal-{time.strftime('%Y%m%dT%H%M%S')}"
                os.rename(path, kept)
            else:
                os.rename(path, absolute)
        else:
            for directory, _dirs, files in os.walk(path):
                for file in files:
                    rel = os.path.relpath(f"{directory}/{file}", path)
                    os.replace(f"{directory}/{file}", f"{absolute}/{rel}")
            fsutil.remove_tree(Path(path))
    return kept


@contextlib.contextmanager
def parent_locked(env: str) -> Iterator[None]:
    """Hold an exclusive lock on ``env``'s parent directory (heal renames entries in it)."""
    parent = os.path.dirname(os.path.abspath(env)) or "/"
    try:
        fd = os.open(parent, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
