"""What an update may change, decided from the lock alone: the pure core of ``venvkeeper update``.

uv resolves; this module says what uv is allowed to take (one ``--upgrade-package`` request per
locked registry package, with the policy's upper bound), and afterwards checks that what uv took
stays inside those bounds, names each change (patch, minor, major) and says whether a package is a
direct dependency of the project or came in transitively.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from venvkeeper.core.names import canonicalize_name

__all__ = [
    "Change",
    "UpgradePlan",
    "changes_between",
    "commit_message",
    "direct_names",
    "groups_for_host",
    "lock_diff",
    "locked_versions",
    "plan_upgrade",
    "to_hold",
    "upper_bound",
    "violations",
    "violators",
]


def _release(version: Version) -> tuple[int, int, int]:
    padded = (*version.release, 0, 0)
    return padded[0], padded[1], padded[2]


def upper_bound(version: str, policy: str) -> str | None:
    """The exclusive bound ``policy`` sets above ``version``: ``<X.(Y+1)``, ``<(X+1)``, or None."""
    major, minor, _ = _release(Version(version))
    if policy == "patch":
        return f"<{major}.{minor + 1}"
    if policy == "minor":
        return f"<{major + 1}"
    return None


def _source_kind(package: Mapping[str, Any]) -> str:
    source = package.get("source", {})
    return next(iter(source), "registry") if isinstance(source, dict) else "registry"


def locked_versions(lock: Mapping[str, Any], *, registry_only: bool = False) -> dict[str, tuple[str, ...]]:
    """Canonical name -> the versions locked for it (more than one where uv forked by markers).

    Workspace members (editable, virtual, directory sources) are left out: they are the project.
    """
    found: dict[str, set[str]] = {}
    for package in lock.get("package", []):
        kind = _source_kind(package)
        if kind in ("editable", "virtual", "directory") or "version" not in package:
            continue
        if registry_only and kind != "registry":
            continue
        found.setdefault(canonicalize_name(str(package["name"])), set()).add(str(package["version"]))
    return {name: tuple(sorted(versions, key=_sort_key)) for name, versions in sorted(found.items())}


def _sort_key(version: str) -> tuple[int, Version | str]:
    try:
        return 0, Version(version)
    except InvalidVersion:
        return 1, version


def direct_names(lock: Mapping[str, Any]) -> set[str]:
    """Packages a workspace member asks for itself (dependencies, extras, dependency groups)."""
    direct: set[str] = set()
    for package in lock.get("package", []):
        if _source_kind(package) not in ("editable", "virtual", "directory"):
            continue
        metadata = package.get("metadata", {})
        entries = list(metadata.get("requires-dist", []))
        for group in metadata.get("requires-dev", {}).values():
            entries += group
        direct.update(canonicalize_name(e["name"]) for e in entries if isinstance(e, dict) and "name" in e)
    return direct


@dataclass(frozen=True)
class UpgradePlan:
    requests: tuple[str, ...]  # the --upgrade-package arguments
    rules: dict[str, str]  # canonical name -> the rule applied: a policy, "exclude" or "==VERSION"


def plan_upgrade(
    versions: Mapping[str, Sequence[str]],
    policy: str,
    overrides: Mapping[str, str],
    hold: Collection[str] = (),
) -> UpgradePlan:
    """One ``--upgrade-package`` request per registry package, bounded by its policy.

    A package uv is not asked to upgrade keeps its locked version (uv prefers what the lock holds),
    which is how ``exclude`` works.

    A package uv locked at several versions (a fork by markers) gets one request with the loosest
    bound of its forks (the bound above the highest): ``--upgrade-package`` takes a name, so no
    request can address one fork alone, and uv applies a request to every fork. Each fork still
    keeps the project's own markers and constraints, which is what usually holds it in its range;
    where uv moves a fork past it anyway, :func:`violations` checks every new version against the
    old versions' bounds and the update fails naming them.
    """
    requests: list[str] = []
    rules: dict[str, str] = {}
    for name, locked in versions.items():
        rule = overrides.get(name, policy)
        rules[name] = rule
        # ``hold``: packages a first resolution moved past their rule. Asked for nothing, uv keeps
        # them at the locked version where it can, and their rule is still checked afterwards.
        if rule == "exclude" or name in hold:
            continue
        if rule.startswith("=="):
            requests.append(f"{name}{rule}")
            continue
        try:
            bound = upper_bound(max(locked, key=_sort_key), rule)
        except InvalidVersion:
            continue  # not a PEP 440 version: no bound can be expressed, so it is left alone
        requests.append(f"{name}{bound}" if bound else name)
    return UpgradePlan(tuple(requests), rules)


@dataclass(frozen=True)
class Change:
    name: str
    old: str | None
    new: str | None
    kind: str  # patch | minor | major | added | removed | downgrade
    direct: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "old": self.old, "new": self.new, "kind": self.kind, "direct": self.direct}


def _kind(old: str, new: str) -> str:
    try:
        before, after = Version(old), Version(new)
    except InvalidVersion:
        return "major"  # nothing smaller can be claimed about versions PEP 440 cannot order
    if after < before:
        return "downgrade"
    if _release(after)[0] != _release(before)[0]:
        return "major"
    if _release(after)[1] != _release(before)[1]:
        return "minor"
    return "patch"


def changes_between(
    old: Mapping[str, Sequence[str]], new: Mapping[str, Sequence[str]], direct: Iterable[str]
) -> list[Change]:
    """Every package whose locked versions differ, sorted by name."""
    direct_set = set(direct)
    changes: list[Change] = []
    for name in sorted(set(old) | set(new)):
        before, after = tuple(old.get(name, ())), tuple(new.get(name, ()))
        if before == after:
            continue
        old_text, new_text = ", ".join(before) or None, ", ".join(after) or None
        if old_text is None:
            kind = "added"
        elif new_text is None:
            kind = "removed"
        else:
            kind = _kind(max(before, key=_sort_key), max(after, key=_sort_key))
        changes.append(Change(name, old_text, new_text, kind, name in direct_set))
    return changes


_ALLOWED = {"patch": {"patch"}, "minor": {"patch", "minor"}, "major": {"patch", "minor", "major"}}


def _within(old: str, new: str, rule: str) -> bool:
    """``new`` is inside ``rule``'s bound around ``old``: a downgrade too, within the same bound."""
    try:
        downgrade = Version(new) < Version(old)
    except InvalidVersion:
        return False
    return (_kind(new, old) if downgrade else _kind(old, new)) in _ALLOWED[rule]


def _versions(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(", ")) if text else ()


def violations(changes: Sequence[Change], rules: Mapping[str, str]) -> list[str]:
    """Changes that break their rule: uv may move a package past its bound to satisfy another one.

    New and dropped packages are allowed (an upgraded package may need a new dependency); a
    downgrade is allowed only inside the bound (it stays within major.minor for ``patch``).
    A package locked at several versions (a fork by markers), before or after, is checked version
    by version: each new version must be within the bound of some old one, because uv may move
    each fork within its own range (and merge or split forks) but the forks are not named.
    """
    broken: list[str] = []
    for change in changes:
        rule = rules.get(change.name)
        if rule is None or change.kind in ("added", "removed"):
            continue
        what = f"{change.name} {change.old} -> {change.new}"
        before, after = _versions(change.old), _versions(change.new)
        if rule == "exclude":
            broken.append(f"{what}, but it is excluded from updates")
        elif rule.startswith("=="):
            if change.new != rule[2:]:
                broken.append(f"{what}, but it is pinned to {rule[2:]}")
        elif rule in _ALLOWED and (len(before) > 1 or len(after) > 1):
            outside = [v for v in after if v not in before and not any(_within(o, v, rule) for o in before)]
            if outside:
                broken.append(
                    f"{what}: {', '.join(outside)} is beyond the {rule} policy of every locked version"
                )
        elif change.kind == "downgrade":
            if _kind(change.new or "", change.old or "") not in _ALLOWED[rule]:
                broken.append(f"{what} is a downgrade beyond the {rule} policy")
        elif change.kind not in _ALLOWED[rule]:
            broken.append(f"{what} is a {change.kind} change, beyond the {rule} policy")
    return broken


def violators(changes: Sequence[Change], rules: Mapping[str, str]) -> list[str]:
    """The names of the packages whose change breaks their rule (see :func:`violations`)."""
    return [change.name for change in changes if violations([change], rules)]


def to_hold(lock: Mapping[str, Any], changes: Sequence[Change], rules: Mapping[str, str]) -> list[str]:
    """What to hold at the locked versions after a resolution broke a rule: each package that broke
    one, and those of its locked dependencies that moved. uv downgrades a package when the upgrade
    of one it depends on no longer fits it (a pin such as ``syrupy==4.8.0``); holding both keeps
    the pair as the old lock had it, which was consistent, while everything else still moves."""
    names = set(violators(changes, rules))
    moved = {change.name for change in changes}
    held = set(names)
    for package in lock.get("package", []):
        if canonicalize_name(str(package.get("name", ""))) not in names:
            continue
        for dependency in package.get("dependencies", []):
            if isinstance(dependency, dict) and "name" in dependency:
                name = canonicalize_name(str(dependency["name"]))
                if name in moved:
                    held.add(name)
    return sorted(held)


def commit_message(changes: Sequence[Change], policy: str, notes: Sequence[str] = ()) -> str:
    """A subject naming the changes, then one line per change (package, old, new, kind, direct)."""
    names = ", ".join(f"{c.name} {c.new or 'removed'}" for c in changes[:4])
    more = f" and {len(changes) - 4} more" if len(changes) > 4 else ""
    lines = [f"Update dependencies ({policy}): {names}{more}", ""]
    width = max(len(c.name) for c in changes)
    for c in changes:
        origin = "direct" if c.direct else "transitive"
        lines.append(f"  {c.name:<{width}}  {c.old or '-'} -> {c.new or '-'}  ({c.kind}, {origin})")
    if notes:
        lines += ["", *notes]
    lines += ["", "Tested and committed by venvkeeper update."]
    return "\n".join(lines) + "\n"


def groups_for_host(
    cli: Sequence[str] | None,
    hosts: Sequence[tuple[str, Sequence[str]]],
    hostname: str,
    default: Sequence[str],
) -> tuple[tuple[str, ...], str]:
    """The groups to update here, and where that choice came from (for the report)."""
    if cli:
        return tuple(sorted(set(cli))), "--group"
    for pattern, groups in hosts:
        if fnmatch.fnmatchcase(hostname, pattern):
            return tuple(sorted(set(groups))), f"hosts rule '{pattern}'"
    return tuple(sorted(set(default))), "[tool.venvkeeper] groups"


def lock_diff(old: bytes, new: bytes) -> str:
    """The unified diff of two uv.lock contents (text), as ``git diff`` would show it."""
    return "".join(
        difflib.unified_diff(
            old.decode(errors="replace").splitlines(keepends=True),
            new.decode(errors="replace").splitlines(keepends=True),
            "a/uv.lock",
            "b/uv.lock",
        )
    )
