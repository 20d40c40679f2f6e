"""What a clone holds that the lock no longer installs (:func:`extraneous`), read from uv's export.

Its own module: packaging's marker parser costs 20-30 ms to import, and only a deploy whose lock
changed needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

from venvkeeper.core.envscan import read_distributions, walk
from venvkeeper.core.names import canonicalize_name

__all__ = ["extraneous", "requirement_lines"]


def requirement_lines(export: str) -> list[str]:
    """The requirements of a ``uv export`` (requirements.txt format): continuation lines joined, hash
    options, comments and options dropped."""
    lines: list[str] = []
    pending = ""
    for raw in export.splitlines():
        text = raw.strip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text, pending = (pending + text).strip(), ""
        text = text.split(" --hash", 1)[0].strip()
        if text and not text.startswith(("#", "-")):
            lines.append(text)
    return lines


def extraneous(
    env_dir: Path, requirements: str, markers: Mapping[str, str], members: Iterable[str]
) -> list[str]:
    """The distributions installed in ``env_dir`` that neither the lock's export (``requirements``, lines
    with markers, evaluated for ``markers``) nor the members account for: what a clone must remove.
    A line that cannot be read keeps its package (nothing is removed on a guess)."""
    wanted = {canonicalize_name(m) for m in members}
    for text in requirement_lines(requirements):
        try:
            req = Requirement(text)
            applies = req.marker is None or req.marker.evaluate(dict(markers))
        except (InvalidRequirement, InvalidMarker, UndefinedEnvironmentName):
            return []
        if applies:
            wanted.add(canonicalize_name(req.name))
    installed = read_distributions(str(env_dir), walk(str(env_dir)))
    return sorted(d.name for d in installed if d.name not in wanted)
