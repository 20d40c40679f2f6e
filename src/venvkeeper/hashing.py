"""Content hashes: what a member is made of, and what a deploy depends on."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["digest_json", "file_sha256", "member_files", "tree_digest"]

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(root: Path, files: Iterable[str]) -> str:
    """sha256 over the relative path, the executable bit and the content of each file (sorted).

    A symlink counts by its target, so a link that changes target changes the digest.
    """
    h = hashlib.sha256()
    for name in sorted(files):
        path = root / name
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            entry = f"L\0{os.readlink(path)}"
        else:
            executable = "x" if st.st_mode & 0o111 else "-"
            entry = f"{executable}\0{file_sha256(path)}"
        h.update(f"{name}\0{entry}\n".encode())
    return h.hexdigest()


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
