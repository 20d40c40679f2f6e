"""Content hashes: what a member is made of, and what a deploy depends on."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from venvkeeper.core.envscan import sha256_file
from venvkeeper.core.errors import unreadable_file

__all__ = ["digest_entries", "digest_json", "member_files", "tree_digest", "tree_entries"]


def tree_entries(root: Path, files: Iterable[str]) -> dict[str, str]:
    """Each file's entry: ``x:<sha256>`` or ``-:<sha256>`` (executable bit), ``L:<target>`` for a symlink."""
    entries: dict[str, str] = {}
    for name in sorted(files):
        path = root / name
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            entries[name] = f"L:{os.readlink(path)}"
        else:
            try:
                digest = sha256_file(str(path), st.st_size)
            except PermissionError as exc:
                raise unreadable_file(exc) from None
            entries[name] = f"{'x' if st.st_mode & 0o111 else '-'}:{digest}"
    return entries


def digest_entries(entries: dict[str, str]) -> str:
    """sha256 over the relative path and entry of each file (sorted): a member's content hash."""
    h = hashlib.sha256()
    for name in sorted(entries):
        h.update(f"{name}\0{entries[name]}\n".encode())
    return h.hexdigest()


def tree_digest(root: Path, files: Iterable[str]) -> str:
    """The content hash of these files; a symlink counts by its target."""
    return digest_entries(tree_entries(root, files))


def member_files(files: Sequence[str], member_path: str, all_member_paths: Sequence[str]) -> list[str]:
    """The files (relative to the workspace root) that belong to one member.

    Members nest (the root project contains the others), so a file belongs to the deepest member
    directory that holds it.
    """

    def owner(name: str) -> str:
        best = "."
        for candidate in all_member_paths:
            inside = candidate != "." and (name == candidate or name.startswith(candidate + "/"))
            if inside and (best == "." or len(candidate) > len(best)):
                best = candidate
        return best

    return [f for f in files if owner(f) == member_path]


def digest_json(value: Any) -> str:
    """A stable digest of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
