"""The no-op deploy without the full machinery: answer "unchanged" from file metadata alone.

A deploy that found nothing to do (or just built a generation) leaves a *stamp*
(:mod:`venvkeeper.generations.stamp`): the request it answered, the generation --env pointed at, and the
stat (mtime, ctime, size, inode) of every file it read: the tracked files, the lock, every
pyproject.toml, ``.python-version``, git's index, the interpreter and the generation's state file. The
next identical request compares those stats and, when all are equal, answers at once. This is how git
decides a file is unchanged without reading it; as in git, a file modified within the clock's
granularity of the stamp is "racy", so no stamp is written until the tree has been still for a moment,
and the full check runs instead.

A moved environment (``mv`` of the directory holding --env: its scripts name the old path) never
matches: the stamp's key holds --env's absolute path and its stats the state file's, so at the new
place neither is the same, and the full deploy sees the move (``paths.moved_from``) and rebuilds.

Anything the fast path does not understand (another flag, a missing stamp, a held lock) falls back
to the full deploy, which is always right. Only modules Python loads anyway are imported here: this
path exists to make cron and config-management runs cost what a ``uv sync`` no-op costs.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time

from venvkeeper.cli import argv
from venvkeeper.cli.messages import unchanged_line, would_not_change_line
from venvkeeper.cli.render_noop import dumps, unchanged_json
from venvkeeper.core import paths
from venvkeeper.core.lazy import lazy
from venvkeeper.generations import stamp as stamps

TYPE_CHECKING = False  # typing is not imported at run time: this path is timed
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from venvkeeper.cli import render
else:
    render = lazy("venvkeeper.cli.render")  # only when the reader has gone before the answer was printed

__all__ = ["try_noop"]

_VALUE_FLAGS = {"--env", "--project", "--group", "--python", "--keep"}
# --no-hooks too: an unchanged deploy runs no hook either way, so its answer is the same.
# --check and --diff: an unchanged deploy's check is the same answer, worded as a check (exit 0).
_BOOL_FLAGS = {"--json", "--no-wait", "--no-rollback", "--no-hooks", "--in-place", "--check", "--diff"}


def _parse(args: Sequence[str]) -> dict[str, Any] | None:
    """The deploy arguments, or None for anything the small parser does not handle exactly."""
    found = argv.parse(args, values=_VALUE_FLAGS, flags=_BOOL_FLAGS, repeatable={"--group"}, max_positional=1)
    if found is None or "--env" not in found:
        return None
    if "--keep" in found and not str(found["--keep"]).isdigit():
        return None
    positional: list[str] = found.pop("positional")  # type: ignore[assignment]
    if positional and "--project" in found:
        return None  # given twice: click's deploy words the refusal
    found["groups"] = found.pop("--group")
    found["project"] = found.pop("--project", positional[0] if positional else ".")
    return found


def _lock_is_free(lock_file: str) -> bool:
    try:
        fd = os.open(lock_file, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock
    return True


def _matching_stamp(parsed: dict[str, Any], env: str, home: str) -> dict[str, Any] | None:
    in_place = bool(parsed.get("--in-place"))
    key = stamps.request_key(parsed["project"], env, parsed["groups"], parsed.get("--python"), in_place)
    stamp = stamps.read_stamp(home, key)
    if stamp is None:
        return None
    try:
        target = None if in_place else os.readlink(env)
    except OSError:
        return None
    if target != stamp.get("target") or not os.path.exists(f"{env}/bin/python"):
        return None
    if any(stamps.file_stat(path) != recorded for path, recorded in stamp["stats"].items()):
        return None
    return stamp


def try_noop(args: Sequence[str]) -> int | None:
    """Answer an unchanged ``deploy`` (print and return 0), or None to run the full deploy."""
    started = time.monotonic()
    parsed = _parse(args)
    if parsed is None:
        return None
    env = os.path.abspath(parsed["--env"])
    home = paths.home(env)
    stamp = _matching_stamp(parsed, env, home)
    # A deploy that holds the lock may be about to switch: queue behind it the normal way.
    if stamp is None or not _lock_is_free(f"{home}/deploy.lock"):
        return None
    try:
        _print_unchanged(
            env,
            stamp.get("generation"),
            in_place=bool(parsed.get("--in-place")),
            as_json=bool(parsed.get("--json")),
            duration_s=time.monotonic() - started,
            check=bool(parsed.get("--check")),
            diff=bool(parsed.get("--diff")),
        )
        sys.stdout.flush()
    except BrokenPipeError:  # the answer stands when nobody reads it (`| head -1`)
        render.discard_stdout()
    return 0


def _print_unchanged(
    env: str,
    generation: int | None,
    *,
    in_place: bool,
    as_json: bool,
    duration_s: float,
    check: bool,
    diff: bool,
) -> None:
    reason = "nothing changed since the live environment was built (file metadata unchanged)"
    if as_json:
        answer = unchanged_json(
            env, generation, reason, in_place=in_place, duration_s=duration_s, check=check, diff=diff
        )
        sys.stdout.write(dumps(answer) + "\n")
        return
    line = would_not_change_line if check else unchanged_line
    sys.stdout.write(line(env, generation, reason, duration_s))
