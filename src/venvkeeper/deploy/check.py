"""``deploy --check``: the plan of the next deploy, as the deploy itself would decide it, with nothing
written.

:mod:`venvkeeper.deploy.converge` gathers the same facts and takes the same :class:`Decision` (so the
answer cannot drift from what a deploy does); this module turns that decision into the plan a user
reads: the members built or taken from the wheel cache, the hooks that would run, and the packages
that would be added, removed and changed. Which packages: uv's export of the lock for the selected
groups (the deploy's own source of truth), its markers evaluated for the chosen interpreter, plus the
members at the versions the lock gives them.

A member whose version is dynamic (from git, say) has no version in the lock: when its content
changed, its version is read from its wheel: the one in the wheel cache for this content, else one
built into the check's scratch directory (as the deploy would build it, and failing as it would).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from venvkeeper.core.names import canonicalize_name
from venvkeeper.deploy.decision import Decision
from venvkeeper.generations.dropped import requirement_lines
from venvkeeper.generations.layout import GenerationState
from venvkeeper.generations.results import CheckResult
from venvkeeper.project import plan
from venvkeeper.project.workspace import LockedMember

__all__ = ["Predicted", "planned", "predicted_packages", "wheel_version"]


def _version(text: str) -> str:
    """As a dist-info directory spells it (what the record's packages hold): normalized."""
    try:
        return str(Version(text))
    except InvalidVersion:
        return text


def _local_sources(lock: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """The lock's packages that uv's export names by path (not a member: ``--no-emit-workspace``):
    normalized path -> (name, version)."""
    found: dict[str, tuple[str, str]] = {}
    for pkg in lock.get("package", []):
        source = pkg.get("source", {})
        for kind in ("directory", "editable", "path"):
            where = source.get(kind)
            if isinstance(where, str) and isinstance(pkg.get("name"), str):
                found[os.path.normpath(where)] = (canonicalize_name(pkg["name"]), str(pkg.get("version", "")))
    return found


def _third_party(
    export_text: str, markers: Mapping[str, str], lock: Mapping[str, Any]
) -> tuple[dict[str, str], list[str], list[tuple[str, str]]]:
    """What uv's export installs for ``markers``: name -> version, the lines naming no package, and
    the path dependencies (name, path) whose version only their build knows."""
    packages: dict[str, str] = {}
    unknown: list[str] = []
    builds: list[tuple[str, str]] = []
    local = _local_sources(lock)
    for text in requirement_lines(export_text):
        try:
            req = Requirement(text)
        except InvalidRequirement:
            path = os.path.normpath(text.removeprefix("-e").strip().split(";", 1)[0].strip())
            named = local.get(path)
            if named is None:
                unknown.append(text)
            elif not named[1]:
                builds.append((named[0], path))
            else:
                packages[named[0]] = _version(named[1])
            continue
        try:
            applies = req.marker is None or req.marker.evaluate(dict(markers))
        except (InvalidMarker, UndefinedEnvironmentName):
            unknown.append(text)
            continue
        pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
        if applies and pins:
            packages[canonicalize_name(req.name)] = _version(pins[0])
        elif applies:
            unknown.append(text)
    return packages, unknown, builds


@dataclass(frozen=True)
class Predicted:
    """What the next environment would hold, as far as the lock says it."""

    packages: dict[str, str]  # name -> version
    unknown: list[str]  # lines of uv's export that name no package version
    unversioned: list[str]  # changed members whose version is dynamic: their wheel says it
    # Path dependencies (name, path from the root) whose version is dynamic: their wheel says it too.
    paths: list[tuple[str, str]]


def predicted_packages(
    export_text: str,
    markers: Mapping[str, str],
    lock: Mapping[str, Any],
    members: Sequence[LockedMember],
    member_hashes: Mapping[str, str],
    record: GenerationState | None,
) -> Predicted:
    """Every distribution the next environment would hold (name -> version). A member whose content is
    unchanged keeps its recorded version; a changed one takes the lock's, or, dynamic (no version in
    the lock), is named in ``unversioned`` for its wheel to tell (:func:`wheel_version`)."""
    packages, unknown, paths = _third_party(export_text, markers, lock)
    locked = {
        canonicalize_name(p["name"]): str(p["version"])
        for p in lock.get("package", [])
        if isinstance(p.get("name"), str) and p.get("version") is not None
    }
    before = {m.get("name"): m.get("sha256") for m in record.members} if record is not None else {}
    previous = record.packages if record is not None else {}
    unversioned: list[str] = []
    for member in members:
        if not member.package:
            continue
        name = canonicalize_name(member.name)
        if before.get(member.name) == member_hashes.get(member.name) and name in previous:
            packages[name] = previous[name]
        elif name in locked:
            packages[name] = _version(locked[name])
        else:
            unversioned.append(member.name)
    return Predicted(packages, unknown, unversioned, paths)


def wheel_version(wheel: Path) -> str:
    """The version a member's wheel carries (its file name says it, as the build wrote it)."""
    return _version(str(parse_wheel_filename(wheel.name)[1]))


def planned(
    decided: Decision,
    *,
    env: str,
    previous: Mapping[str, str],
    packages: Mapping[str, str] | None,
    unknown: Sequence[str] = (),
) -> CheckResult:
    """The check's answer for a decision (``packages``: None when nothing would change)."""
    reason = decided.reason
    if decided.changed and not decided.in_place:
        reason = reason.replace("new generation built", "a new generation would be built", 1)
    elif decided.changed:
        reason = reason.replace("converged in place", "--env would be converged in place", 1)
    if unknown:
        reason += f"; {len(unknown)} line(s) of uv's export name no package version: {unknown[0]}"
    return CheckResult(
        "deploy",
        env=env,
        changed=decided.changed,
        generation=decided.generation,
        previous=decided.generation,
        packages=plan.diff_packages(previous, packages) if packages is not None else plan.PackageDiff(),
        rebuilt=list(decided.rebuild) if decided.changed else [],
        reused=list(decided.reuse) if decided.changed else [],
        planned_hooks=list(decided.hooks) if decided.changed else [],
        in_place=decided.in_place,
        reason=reason,
    )
