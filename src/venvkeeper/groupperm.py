"""The unix group and group-write bits a shared deployment needs (``group`` in the update config).

Several admins (and the service) share an environment through a group: every file and directory
of the environment and its state directory belongs to it and, with ``group-write``, is writable
by it. Directories also get the setgid bit, so what a later run creates inherits the group.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["apply", "check", "fix_hint"]


def _gid(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _entries(roots: Sequence[Path], skip: Collection[Path] = ()) -> Iterator[tuple[str, os.stat_result]]:
    """Every path under ``roots`` (roots included) but ``skip``; symlinks themselves, not followed."""
    skipped = {str(p) for p in skip}
    for root in roots:
        try:
            yield str(root), os.lstat(root)
        except FileNotFoundError:
            continue
        if not root.is_dir() or root.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skipped]
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if path in skipped:
                    continue
                try:
                    yield path, os.lstat(path)
                except FileNotFoundError:
                    continue


def check(roots: Sequence[Path], group: str, *, write: bool, skip: Collection[Path] = ()) -> str | None:
    """The first path that breaks the rule, as one sentence; None when all hold.

    ``skip``: what this run made itself and removes again (its staging copy).
    """
    gid = _gid(group)
    if gid is None:
        return f"group '{group}' (from [tool.venvkeeper.update] group) does not exist on this host"
    for path, st in _entries(roots, skip):
        if st.st_gid != gid:
            owner = _group_name(st.st_gid)
            return f"{path} belongs to group {owner}, not {group}"
        if write and not stat.S_ISLNK(st.st_mode) and not st.st_mode & stat.S_IWGRP:
            return f"{path} is not group-writable ({group} needs to write it)"
    return None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def fix_hint(roots: Sequence[Path], config: Any) -> str:
    paths = " ".join(str(r) for r in roots)
    mode = " && chmod -R g+w " + paths if config.group_write else ""
    return f"chgrp -R {config.group} {paths}{mode}"


def apply(roots: Sequence[Path], group: str, *, write: bool) -> str | None:
    """Give everything under ``roots`` the group (and g+w, setgid on directories); None or the problem."""
    gid = _gid(group)
    if gid is None:
        return f"group '{group}' does not exist on this host"
    for path, st in _entries(roots):
        try:
            if st.st_gid != gid:
                os.lchown(path, -1, gid)
            if stat.S_ISLNK(st.st_mode):
                continue
            wanted = st.st_mode | (stat.S_IWGRP if write else 0)
            if stat.S_ISDIR(st.st_mode):
                wanted |= stat.S_ISGID
            if wanted != st.st_mode:
                os.chmod(path, stat.S_IMODE(wanted))
        except PermissionError:
            return f"cannot give {path} to group {group} (permission denied)"
    return None
