"""The no-op stamp beside --env: what the next identical deploy compares to answer "unchanged" at once.

A deploy that found nothing to do (or just built a generation) writes it: the request it answered, the
generation --env pointed at, and the stat (mtime, ctime, size, inode) of every file it read. The fast
argv path (:mod:`venvkeeper.cli.fastpath`) reads it back and compares. As in git, a file modified within
the clock's granularity of the stamp is "racy", so no stamp is written until the tree has been still for
a moment. Kept to ``os`` and ``json`` at import: the fast path loads this module (deploy writes the
record with :func:`venvkeeper.core.files.atomic_write_json`).
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing is not imported at run time (the no-op fast path)
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path
    from typing import Any

__all__ = ["SCHEMA", "STAMP_NAME", "clear_stamp", "file_stat", "read_stamp", "request_key", "stamp_record"]

STAMP_NAME = "noop-stamp.json"
# 2: stamps written before the selection rule (plan.Options "selection") must not answer "unchanged".
SCHEMA = 2
# Files younger than this (seconds) when the stamp is written make it untrustworthy (racy).
_RACY_WINDOW = 2.0


def request_key(
    project_dir: str | Path, env: str | Path, groups: Sequence[str] | None, python: str | None, in_place: bool
) -> str:
    """The request a stamp answers: the project, --env, the groups, --python and --in-place."""
    return json.dumps(
        [
            os.path.realpath(project_dir),
            os.path.abspath(env),
            sorted(groups) if groups else None,
            python,
            in_place,
        ]
    )


def file_stat(path: str) -> list[int] | None:
    """What a stamp records of a file (None: it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


def read_stamp(home: str, key: str) -> dict[str, Any] | None:
    """The stamp in the state directory ``home`` when it answers the request ``key``, else None."""
    try:
        with open(f"{home}/{STAMP_NAME}", encoding="utf-8") as fh:
            stamp: dict[str, Any] = json.load(fh)
    except (OSError, ValueError):
        return None
    if stamp.get("schema") != SCHEMA or stamp.get("key") != key:
        return None
    return stamp


def stamp_record(
    *, key: str, target: str | None, generation: int | None, files: Iterable[Path], now: float
) -> dict[str, Any] | None:
    """The stamp answering ``key``, with the stats the next no-op will compare; None when the tree is
    racy (then no stamp may stand: :func:`clear_stamp`). ``target``: where --env's symlink points."""
    stats: dict[str, list[int] | None] = {}
    for path in files:
        stat = file_stat(str(path))
        if stat is not None and max(stat[0], stat[1]) >= (now - _RACY_WINDOW) * 1e9:
            return None
        stats[str(path)] = stat
    return {"schema": SCHEMA, "key": key, "target": target, "generation": generation, "stats": stats}


def clear_stamp(home: Path) -> None:
    (home / STAMP_NAME).unlink(missing_ok=True)
