"""The staging copy: the project's files, copied outside the source tree, where uv does its work.

uv writes beside a project it builds or checks (``build/``, ``*.egg-info``, a re-locked
``uv.lock``), and the source may be a read-only mount, so every command works in a copy.

A member whose version comes from git (setuptools-scm, hatch-vcs, uv-dynamic-versioning) needs
the copy to answer git as the source does: otherwise the plugin fails with "This does not appear
to be a Git project", or computes another version. The copy then gets a repository of its own
(:func:`venvkeeper.gateways.git.make_mirror`): the source's objects by reference, its refs, HEAD and
index entries, and the work tree's uncommitted changes as files. When the project is a
subdirectory of its repository, the copy mirrors the repository's layout from its top (a plugin
configured with ``root = ".."`` looks there), holding the project's files and the changed ones.

Without git (an unpacked sdist), the plugins read ``PKG-INFO``: the copy carries each member's.

Known difference: the copy holds tracked files only, so an untracked (not ignored) file in the
source, which makes dunamai call the tree dirty, is not seen there. It matters only for
uv-dynamic-versioning with ``dirty = true`` and ``ignore-untracked = false``; setuptools-scm
ignores untracked files (``git status --untracked-files=no``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from venvkeeper.core import files as fsutil
from venvkeeper.core.errors import unreadable_file
from venvkeeper.gateways import git as gitcmd
from venvkeeper.project import vcsversion

if TYPE_CHECKING:
    from venvkeeper.project.workspace import LockedMember

__all__ = ["populate", "wants_git"]


def wants_git(root: Path, members: Sequence[LockedMember]) -> bool:
    """The copy needs git metadata: a package member's version is dynamic and the tree is in git."""
    packages = [(m.name, m.path) for m in members if m.package]
    return bool(vcsversion.dynamic_versions(root, packages)) and gitcmd.is_work_tree(root)


def _copy(src_root: Path, dst_root: Path, files: Sequence[str]) -> None:
    """The files copied; one the deploying user cannot read is one error line naming it, not a trace
    (a root-owned 0400 file in the checkout, such as bundlewrap's ``.bundlewrap_git_deploy``)."""
    try:
        fsutil.copy_files(src_root, dst_root, files)
    except PermissionError as exc:
        if not str(exc.filename or "").startswith(str(src_root)):
            raise
        raise unreadable_file(exc) from None


def populate(
    source: Path, files: Sequence[str], top: Path, *, git: bool, members: Sequence[LockedMember] = ()
) -> Path:
    """Copy ``files`` (relative to ``source``, the workspace root) under the existing ``top``.

    Returns the workspace root's directory in the copy: ``top`` itself, or below it when ``git``
    (give the copy git metadata) and the project is a subdirectory of its repository.
    """
    if not git:
        _copy(source, top, files)
        # An unpacked sdist whose .gitignore leaves out PKG-INFO: the version is in it. (In a git
        # checkout an untracked PKG-INFO is litter, and hatchling would read it: not copied.)
        listed = set(files)
        names = ("PKG-INFO" if m.path in ("", ".") else f"{m.path}/PKG-INFO" for m in members)
        missing = [name for name in names if name not in listed and (source / name).is_file()]
        if missing and not gitcmd.is_work_tree(source):
            _copy(source, top, missing)
        return top
    mirror = gitcmd.mirror_source(source)
    project = top / mirror.prefix if mirror.prefix else top
    project.mkdir(parents=True, exist_ok=True)
    _copy(source, project, files)
    present = {mirror.prefix + name for name in files}
    # setuptools-scm and dunamai call a tree dirty for an uncommitted change anywhere in it, so
    # changed files outside the project are copied as well; a deleted one stays absent.
    outside = sorted(
        path
        for path, what in mirror.changed.items()
        if path not in present
        and what != "D"
        and ((mirror.top / path).is_file() or (mirror.top / path).is_symlink())
    )
    _copy(mirror.top, top, outside)
    present.update(outside)
    deleted = {path for path, what in mirror.changed.items() if what == "D"}
    indexed = (
        entry.split(b"\t", 1)[1].decode(errors="surrogateescape")
        for entry in mirror.index_info.split(b"\0")
        if b"\t" in entry
    )
    gitcmd.make_mirror(mirror, top, sorted({p for p in indexed if p not in present and p not in deleted}))
    return project
