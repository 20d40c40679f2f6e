"""What heal changes, copied first and put back when the environment comes out worse.

The copies live in ``.NAME.heal-backup-PID`` beside the environment, so that a heal killed half-way
leaves them where :mod:`venvkeeper.doctor.recovery` finds them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from venvkeeper.core import files as fsutil

__all__ = ["Backup", "replace_file"]


class Backup:
    """Copies of what heal changes, in a directory beside the environment, put back on request."""

    def __init__(self, root: str, *, enabled: bool = True) -> None:
        parent, name = os.path.split(root)
        self.root = root
        self.enabled = enabled  # False: for a directory heal built itself and throws away on failure
        self.dir = f"{parent}/.{name}.heal-backup-{os.getpid()}"
        self.saved: list[str] = []
        self.created: list[str] = []
        self.moved: list[tuple[str, str]] = []  # (where it was, where it is now)

    def save(self, rel: str) -> None:
        path = f"{self.root}/{rel}"
        if not self.enabled or rel in self.saved or rel in self.created:
            return
        if not os.path.lexists(path):
            self.created.append(rel)
            return
        dest = f"{self.dir}/{rel}"
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.islink(path):
            os.symlink(os.readlink(path), dest)
        else:
            shutil.copy2(path, dest)
        self.saved.append(rel)

    def put_back(self, rel: str) -> None:
        """Restore one saved file now (one that uv overwrote while converting)."""
        os.replace(f"{self.dir}/{rel}", f"{self.root}/{rel}")
        self.saved.remove(rel)

    def restore(self) -> None:
        for rel in self.created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.root}/{rel}")
        for rel in self.saved:
            os.replace(f"{self.dir}/{rel}", f"{self.root}/{rel}")
        self.discard()

    def discard(self) -> None:
        if self.enabled:
            fsutil.remove_tree(Path(self.dir))


def replace_file(path: str, data: bytes) -> None:
    """Write through a new inode: an installed file may be a hard link into uv's cache."""
    mode = os.stat(path).st_mode & 0o7777
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.heal-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
