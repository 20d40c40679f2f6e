"""The unix group and group-write bits a shared deployment needs (``group`` in the update config).

Several admins (and the service) share an environment through a group: every directory and file
of the environment and its state directory belongs to it, and with ``group-write`` every directory is
writable by it (so the group can make new generations and state). Directories also get the setgid
bit, so what a later run creates inherits the group.

Files with more than one link are left alone. uv installs by hard-linking from its cache, so such a
file *is* the cache's file: giving it to the service's group (and g+w) would let the service edit
what every later environment on the host links to.
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


def _shared(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and st.st_nlink > 1


def _entries(roots: Sequence[Path], skip: Collection[Path] = ()) -> Iterator[tuple[str, os.stat_result]]:
    """Every path under ``roots`` (roots included) but ``skip`` and hard-linked files; symlinks
    themselves, not followed."""
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
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if not _shared(st):
                    yield path, st


def check(roots: Sequence[Path], group: str, *, write: bool, skip: Collection[Path] = ()) -> str | None:
    """The first path that breaks the rule, as one sentence; None when all hold.

    ``skip``: what this run made itself and removes again (its staging copy).
    """
    gid = _gid(group)
    if gid is None:
        return f"group '{group}' (from [tool.venvkeeper.update] group) does not exist on this host"
    for path, st in _entries(roots, skip):
        if stat.S_ISLNK(st.st_mode):
            continue  # a link's own group gives no access to anything
        if st.st_gid != gid:
            owner = _group_name(st.st_gid)
            return f"{path} belongs to group {owner}, not {group}"
        if write and stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IWGRP:
            return f"{path} is not group-writable ({group} needs to write in it)"
    return None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def fix_hint(roots: Sequence[Path], config: Any) -> str:
    paths = " ".join(str(r) for r in roots)
    mode = f" && find {paths} -type d -exec chmod g+ws {{}} +" if config.group_write else ""
    # Not chgrp -R: that would take uv's hard-linked cache files too.
    return f"find {paths} \\( -type d -o -links 1 \\) -exec chgrp -h {config.group} {{}} +{mode}"


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
