"""The no-op stamp beside --env: what the next identical deploy compares to answer "unchanged" at once.

A deploy that found nothing to do (or just built a generation) writes it: the request it answered, the
generation --env pointed at, and the stat (mtime, ctime, size, inode) of every file it read. The fast
argv path (:mod:`venvkeeper.cli.fastpath`) reads it back and compares. As in git, a file modified within
the clock's granularity of the stamp is "racy", so no stamp is written until the tree has been still for
a moment.

Stored with :mod:`marshal`, not JSON: marshal is built into the interpreter (importing it costs
nothing), while ``import json`` loads ``re``, ``enum`` and ``functools``, a third of what a no-op
deploy costs beyond Python's own start-up (``python -X importtime``). The stamp is a cache, never
the truth: anything unreadable (another format, a truncated file, another schema) is no stamp, and
the full deploy answers. marshal is not meant for untrusted bytes; the stamp is in the state
directory beside the generations, so whoever can write it can replace the environment itself.
Kept to ``os`` and ``marshal``: the fast path loads this module (deploy writes the stamp with
:func:`venvkeeper.core.files.atomic_write_bytes`, through :func:`encode`).
"""

from __future__ import annotations

import marshal
import os

TYPE_CHECKING = False  # typing is not imported at run time (the no-op fast path)
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path
    from typing import Any

__all__ = [
    "SCHEMA",
    "STAMP_NAME",
    "clear_stamp",
    "encode",
    "file_stat",
    "read_stamp",
    "request_key",
    "stamp_record",
]

STAMP_NAME = "noop-stamp.marshal"
# Written by earlier versions (JSON); removed with the current one so no stale file lingers.
_OLD_NAMES = ("noop-stamp.json",)
# 2: stamps written before the selection rule (plan.Options "selection") must not answer "unchanged".
# 3: marshal instead of JSON (a new file name too: an old venvkeeper never reads it).
SCHEMA = 3
# marshal's format 4 is read by every Python venvkeeper supports (3.4+; 3.14's format 5 only adds
# slices), so a stamp written under one interpreter is still readable after venvkeeper's own moves.
_MARSHAL_VERSION = 4
# Files younger than this (seconds) when the stamp is written make it untrustworthy (racy).
_RACY_WINDOW = 2.0


def request_key(
    project_dir: str | Path, env: str | Path, groups: Sequence[str] | None, python: str | None, in_place: bool
) -> list[Any]:
    """The request a stamp answers: the project, --env, the groups, --python and --in-place."""
    return [
        os.path.realpath(project_dir),
        os.path.abspath(env),
        sorted(groups) if groups else None,
        python,
        in_place,
    ]


def file_stat(path: str) -> list[int] | None:
    """What a stamp records of a file (None: it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


def read_stamp(home: str, key: list[Any]) -> dict[str, Any] | None:
    """The stamp in the state directory ``home`` when it answers the request ``key``, else None."""
    try:
        with open(f"{home}/{STAMP_NAME}", "rb") as fh:
            stamp = marshal.load(fh)  # noqa: S302 - our own state directory (see the module's docstring)
    except (OSError, EOFError, ValueError, TypeError):  # marshal's "bad marshal data" is a ValueError
        return None
    if not isinstance(stamp, dict) or stamp.get("schema") != SCHEMA or stamp.get("key") != key:
        return None
    if not isinstance(stamp.get("stats"), dict):
        return None
    return stamp


def stamp_record(
    *, key: list[Any], target: str | None, generation: int | None, files: Iterable[Path], now: float
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


def encode(record: dict[str, Any]) -> bytes:
    """The bytes of a stamp file (:func:`read_stamp` reads them back)."""
    return marshal.dumps(record, _MARSHAL_VERSION)


def clear_stamp(home: Path) -> None:
    for name in (STAMP_NAME, *_OLD_NAMES):
        (home / name).unlink(missing_ok=True)
