"""Where venvkeeper keeps its state beside --env, as plain strings.

:class:`venvkeeper.generations.layout.Layout` builds on these; the no-op deploy and ``verify`` use them
directly, because importing pathlib alone costs them a tenth of their time.
"""

from __future__ import annotations

import os

from venvkeeper.core.lazy import lazy

TYPE_CHECKING = False  # typing is not imported at run time (timed paths)
if TYPE_CHECKING:
    import json
    from typing import Any
else:
    # Only read_state needs it; the no-op deploy needs only home(), and json loads re and enum.
    json = lazy("json")

__all__ = [
    "STATE_SCHEMA",
    "built_at",
    "current_number",
    "gen_dir",
    "home",
    "locate",
    "manifest_file",
    "moved_from",
    "read_state",
    "state_file",
]

# The schema of a generation's record (generations.GenerationState), read by verify as plain JSON.
STATE_SCHEMA = 1


def home(env: str) -> str:
    """``/var/lib/app/.venv`` -> ``/var/lib/app/.venv.venvkeeper`` (``env`` absolute, not resolved)."""
    return f"{os.path.dirname(env)}/{os.path.basename(env)}.venvkeeper"


def gen_dir(home_dir: str, number: int) -> str:
    return f"{home_dir}/generations/{number:04d}"


def state_file(home_dir: str, number: int) -> str:
    return f"{home_dir}/generations/{number:04d}.json"


def manifest_file(home_dir: str, number: int) -> str:
    return f"{home_dir}/generations/{number:04d}.manifest.json"


def current_number(env: str) -> int | None:
    """The generation --env's symlink points at, or None when it is not venvkeeper's symlink."""
    try:
        target = os.readlink(env)
    except OSError:
        return None
    resolved = os.path.normpath(os.path.join(os.path.dirname(env), target))
    parent, name = os.path.split(resolved)
    if parent != f"{home(env)}/generations" or not name.isdigit():
        return None
    return int(name)


def read_state(path: str) -> dict[str, Any] | None:
    """A generation's record as plain JSON, or None when it is missing, unreadable or another schema."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == STATE_SCHEMA else None


def locate(absolute: str) -> tuple[str, int | None, dict[str, Any] | None]:
    """The directory behind ``--env`` (absolute), its generation and venvkeeper's record of it.

    Behind venvkeeper's symlink: the live generation, its number and its record (None when the
    record is missing). Otherwise the real directory, no number, and the record an ``--in-place``
    deploy leaves beside it (only when --env is not a symlink of the user's own).
    """
    home_dir = home(absolute)
    number = current_number(absolute)
    if number is not None:
        return gen_dir(home_dir, number), number, read_state(state_file(home_dir, number))
    state = read_state(f"{home_dir}/in-place.json") if not os.path.islink(absolute) else None
    return os.path.realpath(absolute), None, state


def built_at(state: dict[str, Any], number: int | None) -> str | None:
    """The directory a generation (``number``; None for an ``--in-place`` environment) was built
    in, as its record says; None when the record does not tell.

    uv writes that path into every console script's ``#!`` line and into ``bin/activate``, so the
    environment only works there. Records written before ``directory`` existed still name the
    state directory of the time in their members' wheel paths (``HOME/wheels/NAME/SLOT/FILE``).
    """
    recorded = state.get("directory")
    if isinstance(recorded, str) and recorded.startswith("/"):
        return recorded
    for member in state.get("members") or ():
        wheel = member.get("wheel") if isinstance(member, dict) else None
        parts = wheel.rsplit("/", 4) if isinstance(wheel, str) and wheel.startswith("/") else []
        if len(parts) == 5 and parts[1] == "wheels" and parts[0].endswith(".venvkeeper"):
            if number is not None:
                return gen_dir(parts[0], number)
            return parts[0].removesuffix(".venvkeeper")
    return None


def moved_from(state: dict[str, Any] | None, directory: str, number: int | None) -> str | None:
    """Where the environment at ``directory`` was built, when that path no longer leads to it
    (the environment, or a directory above it, was moved or copied); None when it still does or
    the record does not say.

    Compared by inode, not by name: a path through a symlink that still leads here is not a move.
    """
    old = built_at(state, number) if state is not None else None
    if old is None:
        return None
    try:
        here = os.stat(directory)
    except OSError:
        return None
    try:
        there = os.stat(old)
    except OSError:
        return old
    return None if (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino) else old
