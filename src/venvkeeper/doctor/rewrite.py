"""Rewriting the paths an environment's files name: shebangs, activate scripts, and RECORD after them.

Used by the in-place repair of a moved environment, by the conversion of a package directory and by
the rebuild (whose new scripts name where they were built, not where they will live).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re

from venvkeeper.core import envscan
from venvkeeper.doctor.backup import Backup, replace_file
from venvkeeper.doctor.result import Action

__all__ = ["rewrite_paths", "update_records"]

_TRAMPOLINE_END = b"' '''"


def _sha256_record(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _boundary(old: str) -> re.Pattern[str]:
    return re.compile(re.escape(old) + r"(?=[/\"'\s]|$)", re.MULTILINE)


def _sh_quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


def _launcher(python: str) -> bytes:
    """The first line(s) of a script that starts ``python``.

    A ``#!`` line cannot hold a path with a space, and Linux cuts it at 127 bytes (BINPRM_BUF_SIZE
    before 5.1): then pip and uv write a /bin/sh trampoline instead, and so does heal.
    """
    if " " in python or len(python) > 125:
        exec_line = "'''exec' " + _sh_quote(python) + ' "$0" "$@"'
        return b"#!/bin/sh\n" + exec_line.encode("utf-8", "surrogateescape") + b"\n" + _TRAMPOLINE_END
    return f"#!{python}".encode("utf-8", "surrogateescape")


def _new_head(data: bytes, new: str) -> bytes:
    """``data`` (a script) starting ``new`` instead of the interpreter it names."""
    head, sep, rest = data.partition(b"\n")
    if head.startswith(b"#!/bin/sh"):  # a trampoline: the exec line, then the closing quote line
        _exec_line, sep, rest = rest.partition(b"\n")
        if rest.startswith(_TRAMPOLINE_END):
            return _launcher(new) + rest[len(_TRAMPOLINE_END) :]
        return _launcher(new) + b"\n" + rest
    args = head.decode("utf-8", "surrogateescape")[2:].strip().split(None, 1)[1:]
    if args:  # "#!/old/bin/python -E": keep the options
        return f"#!{new} {args[0]}".encode("utf-8", "surrogateescape") + sep + rest
    return _launcher(new) + sep + rest


def rewrite_paths(root: str, action: Action, backup: Backup) -> list[str]:
    """Carry out a ``rewrite-paths`` action under ``root``; returns the files changed (relative)."""
    changed: list[str] = []
    shebangs: dict[str, tuple[str, str]] = action.data["shebangs"]
    for rel, (_old, new) in shebangs.items():
        path = f"{root}/{rel}"
        with open(path, "rb") as fh:
            data = fh.read()
        backup.save(rel)
        replace_file(path, _new_head(data, new))
        changed.append(rel)
    activates: dict[str, tuple[str, str]] = action.data["activates"]
    for rel, (old, new) in activates.items():
        path = f"{root}/{rel}"
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
        backup.save(rel)
        replace_file(
            path, _boundary(old).sub(new.replace("\\", "\\\\"), text).encode("utf-8", "surrogateescape")
        )
        changed.append(rel)
    return changed


def update_records(root: str, changed: list[str], backup: Backup) -> None:
    """Give the rewritten files their new hash in whichever RECORD lists them (verify reads RECORD)."""
    if not changed:
        return
    wanted = set(changed)
    for dist in envscan.distributions_in(root, _site_dirs(root)):
        hits = wanted & set(dist.record)
        if not hits:
            continue
        record = f"{root}/{dist.dist_info}/RECORD"
        with open(record, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        site = os.path.dirname(dist.dist_info)
        for row in rows:
            if row and os.path.normpath(f"{site}/{row[0]}") in hits:
                with open(os.path.normpath(f"{root}/{site}/{row[0]}"), "rb") as fh:
                    data = fh.read()
                row[1:] = [_sha256_record(data), str(len(data))]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        backup.save(f"{dist.dist_info}/RECORD")
        replace_file(record, out.getvalue().encode())


def _site_dirs(root: str) -> list[str]:
    try:
        names = os.listdir(f"{root}/lib")
    except OSError:
        return []
    return [f"lib/{n}/site-packages" for n in sorted(names) if n.startswith("python")]
