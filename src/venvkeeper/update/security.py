"""update with security: what the known advisories change in an update, decided from data alone.

A re-lock's candidate that would install a version with a known advisory is held back: its
``--upgrade-package`` request is capped below that version (uv takes the highest version under the
cap, never one below the locked version), and a new dependency with an advisory holds back the
package that brought it in. A version that fixes an advisory affecting the locked one may pass the
package's policy bound, up to the ``security`` level of ``[tool.venvkeeper.update]`` (``off`` by
default); the tests still judge it. The advisories come from a source the command line hands update
(:class:`AdvisorySource`): update never reads OSV data itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from venvkeeper.core.names import canonicalize_name
from venvkeeper.update.plan import Change, UpgradePlan, upper_bound

__all__ = [
    "LEVELS",
    "Advisories",
    "AdvisorySource",
    "Known",
    "Lookup",
    "Screening",
    "SecurityReport",
    "cap_request",
    "commit_notes",
    "dependents",
    "fix_targets",
    "lines",
    "named_in",
    "parents_of",
    "report",
    "vulnerable_candidates",
    "widened_request",
    "with_requests",
]

LEVELS = ("off", "patch", "minor", "major")
_WITHIN: dict[str, set[str]] = {
    "off": set(),
    "patch": {"patch"},
    "minor": {"patch", "minor"},
    "major": {"patch", "minor", "major"},
}


@dataclass(frozen=True)
class Known:
    """One advisory that affects one version of one package."""

    id: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    fixed: tuple[str, ...] = ()  # the versions the advisory says fix it, for this package


# (canonical name, version) -> the advisories that affect it (absent: none)
Lookup = Mapping[tuple[str, str], Sequence[Known]]


class AdvisorySource(Protocol):
    """Where update's advisories come from (the command line builds it from audit's sources)."""

    def describe(self) -> str: ...

    def affecting(self, packages: Mapping[str, Collection[str]]) -> dict[tuple[str, str], list[Known]]:
        """For each name -> versions asked: the advisories that affect each version (raises a
        :class:`~venvkeeper.core.errors.VenvkeeperError` when the data cannot be read)."""
        ...


# What the command line hands update: the project root -> its advisory source (None: none configured).
Advisories = Callable[[Path], "AdvisorySource | None"]


@dataclass(frozen=True)
class Screening:
    """What preflight learned: the source, the ``security`` level and the locked versions' advisories."""

    source: AdvisorySource
    level: str
    current: Lookup


def _key(version: str) -> tuple[int, Version | str]:
    try:
        return 0, Version(version)
    except InvalidVersion:
        return 1, version


def _kind(old: str, new: str) -> str | None:
    try:
        before, after = (*Version(old).release, 0, 0), (*Version(new).release, 0, 0)
    except InvalidVersion:
        return None
    if after[0] != before[0]:
        return "major"
    return "minor" if after[1] != before[1] else "patch"


def fix_targets(
    versions: Mapping[str, Sequence[str]], rules: Mapping[str, str], current: Lookup, level: str
) -> dict[str, str]:
    """Name -> the lowest version that fixes every fixable advisory of its locked version, where that
    version is past the package's policy bound but within the ``level`` bound (the policy takes a fix
    inside its bound by itself). A pinned or excluded package is left as its rule says."""
    targets: dict[str, str] = {}
    for name, locked in versions.items():
        rule = rules.get(name)
        if level == "off" or len(locked) != 1 or rule not in ("patch", "minor", "major"):
            continue
        old = locked[0]
        lowest = [
            min((v for v in known.fixed if _key(v) > _key(old)), key=_key, default=None)
            for known in current.get((name, old), ())
        ]
        fixes = [v for v in lowest if v is not None]
        if not fixes:
            continue
        target = max(fixes, key=_key)
        kind = _kind(old, target)
        if kind is not None and kind not in _WITHIN[rule] and kind in _WITHIN[level]:
            targets[name] = target
    return targets


def widened_request(name: str, target: str, rule: str) -> str:
    """The request that takes a fix past the policy: the policy's bound around the fix. No lower bound:
    an index without the fixed version still resolves (below it, the candidate is judged again)."""
    return f"{name}{upper_bound(target, rule) or ''}"


def cap_request(name: str, locked: str, vulnerable: str) -> str | None:
    """Below the vulnerable version, never below the locked one (uv prefers the locked version); None
    when nothing is left between them (a downgrade to a vulnerable version: hold the package)."""
    if _key(vulnerable) <= _key(locked):
        return None
    return f"{name}>={locked},<{vulnerable}"


def _request_name(request: str) -> str:
    try:
        return canonicalize_name(Requirement(request).name)
    except InvalidRequirement:
        return request


def with_requests(plan: UpgradePlan, requests: Mapping[str, str], rules: Mapping[str, str]) -> UpgradePlan:
    """``plan`` with the requests of some packages replaced, and their rules (for the checks after)."""
    kept = [r for r in plan.requests if _request_name(r) not in requests]
    return UpgradePlan((*kept, *requests.values()), {**plan.rules, **rules})


def vulnerable_candidates(
    changes: Iterable[Change], found: Lookup, current: Lookup
) -> dict[str, tuple[str, list[Known]]]:
    """Name -> (the lowest new version with an advisory, its advisories), among what the re-lock moved.

    An advisory the locked version has too does not count: holding the package back would leave it
    as exposed (an advisory with no fix would freeze the package for good); it stays "remaining"."""
    bad: dict[str, tuple[str, list[Known]]] = {}
    for change in changes:
        old = change.old.split(", ") if change.old else []
        already = {k.id for v in old for k in current.get((change.name, v), ())}
        for version in sorted((change.new or "").split(", "), key=_key) if change.new else ():
            known = [k for k in found.get((change.name, version), ()) if k.id not in already]
            if known and change.name not in bad:
                bad[change.name] = (version, known)
    return bad


def parents_of(
    lock: Mapping[str, Any], name: str, moved: Collection[str], added: Collection[str]
) -> set[str]:
    """The packages of ``moved`` that bring ``name`` in (through packages that are new too)."""
    parents: set[str] = set()
    seen, todo = {name}, [name]
    while todo:
        child = todo.pop()
        for package in lock.get("package", []):
            deps = {canonicalize_name(str(d.get("name", ""))) for d in package.get("dependencies", [])}
            parent = canonicalize_name(str(package.get("name", "")))
            if child not in deps or parent in seen:
                continue
            seen.add(parent)
            if parent in added:
                todo.append(parent)
            elif parent in moved:
                parents.add(parent)
    return parents


def dependents(
    lock: Mapping[str, Any], names: Collection[str], moved: Collection[str], added: Collection[str]
) -> dict[str, str]:
    """The packages of ``moved`` whose version in ``lock`` depends on one of ``names``, directly or
    through packages that moved or are new too: each -> the name of ``names`` it leads to.

    When a cap below a vulnerable version leaves uv no solution, these are the packages whose new
    version may be what needs the vulnerable one: held at their locked versions (which the old lock
    shows need no such version), they give uv back a way out."""
    users: dict[str, set[str]] = {}
    for package in lock.get("package", []):
        parent = canonicalize_name(str(package.get("name", "")))
        for dependency in package.get("dependencies", []):
            users.setdefault(canonicalize_name(str(dependency.get("name", ""))), set()).add(parent)
    found: dict[str, str] = {}
    for name in sorted(names):
        seen, todo = {name}, [name]
        while todo:
            for parent in sorted(users.get(todo.pop(), ())):
                if parent in seen or (parent not in moved and parent not in added):
                    continue
                seen.add(parent)
                todo.append(parent)
                if parent in moved and parent not in names:
                    found.setdefault(parent, name)
    return found


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def named_in(text: str, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that ``text`` (uv's account of a failed resolution) names: uv's derivation
    names every package the conflict runs through, so these are the ones in the way (a word of uv's
    prose that happens to be a package's name only holds that package back one round more)."""
    said = {canonicalize_name(word.rstrip(".-_")) for word in _WORD.findall(text)}
    return sorted(name for name in names if name in said)


@dataclass
class SecurityReport:
    """What the report, the history and the mail say about advisories."""

    source: str
    level: str
    fixed: list[dict[str, Any]] = field(default_factory=list)  # {name, old, new, id}
    remaining: list[dict[str, Any]] = field(default_factory=list)  # {name, version, id}
    # {name, version, ids, parent, requires, uv, held_at}: ``parent`` the package a new dependency with
    # an advisory holds back; ``requires`` the vulnerable package a package's new version depends on
    # when the cap on it left uv no solution (``uv``: uv's reason); ``held_at`` the version kept.
    held_back: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None  # why security is off although configured

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "level": self.level,
            "fixed": self.fixed,
            "remaining": self.remaining,
            "held_back": self.held_back,
            "note": self.note,
        }

    def brief(self) -> dict[str, Any]:
        """For the history: the advisory ids only."""
        return {
            "fixed": sorted({e["id"] for e in self.fixed}),
            "remaining": sorted({e["id"] for e in self.remaining}),
            "held_back": sorted({i for e in self.held_back for i in e.get("ids", [])}),
        }


def report(
    screening: Screening, old: Mapping[str, Sequence[str]], new: Mapping[str, Sequence[str]], after: Lookup
) -> SecurityReport:
    """Fixed: an advisory of a locked version that no version of the new lock has; remaining: each
    advisory the new lock's versions still have."""
    result = SecurityReport(screening.source.describe(), screening.level)
    for name, versions in sorted(old.items()):
        still = {k.id for v in new.get(name, ()) for k in after.get((name, v), ())}
        for version in versions:
            for known in screening.current.get((name, version), ()):
                if known.id not in still:
                    entry = {"name": name, "old": version, "new": ", ".join(new.get(name, ())) or None}
                    result.fixed.append({**entry, "id": known.id})
    for name, versions in sorted(new.items()):
        for version in versions:
            for known in after.get((name, version), ()):
                result.remaining.append({"name": name, "version": version, "id": known.id})
    return result


def commit_notes(found: SecurityReport | None) -> list[str]:
    """The commit message's lines: each advisory the update fixes, each it leaves, each it held back."""
    if found is None:
        return []
    notes = [f"Fixes {e['id']} ({e['name']} {e['old']})" for e in found.fixed]
    notes += [f"Still affected: {e['id']} ({e['name']} {e['version']})" for e in found.remaining]
    return notes + [f"Held back: {_held_line(e).removeprefix('held back: ')}" for e in found.held_back]


def lines(security: Mapping[str, Any] | None) -> list[str]:
    """The report's advisories as lines (the text report and the mail): held back, fixed, remaining."""
    if not security:
        return []
    if security.get("note"):
        return [str(security["note"])]
    out: list[str] = []
    for entry in security.get("held_back") or []:
        out.append(_held_line(entry))
    for entry in security.get("fixed") or []:
        moved = f"{entry.get('old')} -> {entry.get('new') or '-'}"
        out.append(f"fixed: {entry.get('name')} {moved} ({entry.get('id')})")
    for entry in security.get("remaining") or []:
        out.append(f"remaining: {entry.get('name')} {entry.get('version')} ({entry.get('id')})")
    return out or [f"none known ({security.get('source')})"]


def _held_line(entry: Mapping[str, Any]) -> str:
    ids = ", ".join(entry.get("ids") or [])
    what = f"{entry.get('name')} {entry.get('version')}"
    if entry.get("requires"):
        why = f"depends on {entry['requires']}, held back for {ids}"
    else:
        why = ids + (f", brought in by {entry['parent']}" if entry.get("parent") else "")
    line = f"held back: {what} ({why})"
    if entry.get("held_at"):
        line += f", held at {entry['held_at']}"
    # uv's own words, as it gave them with the dependency capped: why this package is held too.
    return line + (f"; uv, with {entry['requires']} capped: {entry['uv']}" if entry.get("uv") else "")
