"""OSV records (https://ossf.github.io/osv-schema/) and which PyPI versions they affect.

A record names packages by ecosystem and name, each with ``ranges`` (ordered ``events``:
``introduced``, ``fixed``, ``last_affected``, ``limit``) and an explicit ``versions`` list. A version
is affected when the list names it, or when a range of type ``ECOSYSTEM`` (PEP 440 ordering, for PyPI)
or ``SEMVER`` holds it by the schema's evaluation rule: the events sorted by version, an
``introduced`` at or below the version opens the range, a ``fixed`` at or below it (or a
``last_affected`` below it) closes it again. ``GIT`` ranges name commits, which a wheel does not
carry: they are not evaluated (a PyPI record lists its versions besides). A ``withdrawn`` record
affects nothing.

Pure: no file or network here (:mod:`venvkeeper.audit.sources` reads the data).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from venvkeeper.core.names import canonicalize_name

__all__ = [
    "ECOSYSTEM",
    "Advisory",
    "Affected",
    "OsvFormatError",
    "Range",
    "fixed_above",
    "matching",
    "parse_record",
]

ECOSYSTEM = "PyPI"
_EVALUATED = ("ECOSYSTEM", "SEMVER")


class OsvFormatError(ValueError):
    """A record that is not OSV (the message names the field)."""


@dataclass(frozen=True)
class Range:
    kind: str  # ECOSYSTEM, SEMVER (GIT ranges are dropped)
    events: tuple[tuple[str, str], ...]  # (event, version) as the record gives them

    def holds(self, version: Version) -> bool:
        ordered = sorted(self.events, key=lambda e: _key(e[1]))
        affected = False
        for event, value in ordered:
            if event == "introduced" and (value == "0" or _key(value) <= version):
                affected = True
            elif _closes(event, _key(value), version):
                affected = False
        return affected

    def text(self) -> str:
        """``>=1.0, <1.2.3`` style, in the record's order (``introduced: 0`` is no lower bound)."""
        parts: list[str] = []
        for event, value in self.events:
            if event == "introduced" and value != "0":
                parts.append(f">={value}")
            elif event in ("fixed", "limit"):
                parts.append(f"<{value}")
            elif event == "last_affected":
                parts.append(f"<={value}")
        return ", ".join(parts) or "all versions"


def _closes(event: str, at: Version, version: Version) -> bool:
    """Whether a closing event at ``at`` leaves ``version`` outside the range again."""
    if event == "last_affected":
        return at < version
    return event in ("fixed", "limit") and at <= version


def _key(value: str) -> Version:
    """A range event's version; "0" (all earlier versions) sorts first."""
    if value == "0":
        return Version("0")
    return Version(value)


@dataclass(frozen=True)
class Affected:
    """One ``affected`` entry of a record, for one PyPI package."""

    name: str  # canonical
    ranges: tuple[Range, ...]
    versions: frozenset[str]  # as listed (compared as parsed versions too)

    def holds(self, version: str) -> bool:
        if version in self.versions:
            return True
        try:
            parsed = Version(version)
        except InvalidVersion:
            return False
        if any(_same(parsed, listed) for listed in self.versions):
            return True
        return any(r.holds(parsed) for r in self.ranges)

    def fixed(self) -> list[str]:
        return sorted({v for r in self.ranges for e, v in r.events if e == "fixed"}, key=_sort_key)

    def text(self) -> str:
        return " or ".join(r.text() for r in self.ranges) or ", ".join(sorted(self.versions))


def _same(version: Version, listed: str) -> bool:
    try:
        return Version(listed) == version
    except InvalidVersion:
        return False


def _sort_key(value: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(value))
    except InvalidVersion:
        return (1, value)


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    modified: str
    affected: tuple[Affected, ...]  # the PyPI entries only
    severity: tuple[str, ...] = ()  # the record's severity scores, as given ("CVSS_V3: CVSS:3.1/...")

    def names(self) -> set[str]:
        return {a.name for a in self.affected}

    def match(self, name: str, version: str) -> Affected | None:
        """The entry that says ``name`` ``version`` is affected, or None."""
        canonical = canonicalize_name(name)
        for entry in self.affected:
            if entry.name == canonical and entry.holds(version):
                return entry
        return None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "aliases": list(self.aliases), "summary": self.summary}


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OsvFormatError(f"{where} must be a list of strings")
    return tuple(value)


def _range(raw: Any, where: str) -> Range | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise OsvFormatError(f"{where} must be an object with a type")
    if raw["type"] not in _EVALUATED:
        return None
    events: list[tuple[str, str]] = []
    for i, event in enumerate(raw.get("events") or []):
        if not isinstance(event, Mapping) or len(event) != 1:
            raise OsvFormatError(f"{where}.events[{i}] must name one event")
        [(kind, value)] = event.items()
        if kind not in ("introduced", "fixed", "last_affected", "limit") or not isinstance(value, str):
            raise OsvFormatError(f"{where}.events[{i}]: unknown event {kind!r}")
        try:
            _key(value)
        except InvalidVersion:
            raise OsvFormatError(f"{where}.events[{i}]: {value!r} is not a version") from None
        events.append((kind, value))
    return Range(raw["type"], tuple(events))


def _affected(entries: Any, where: str) -> tuple[Affected, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise OsvFormatError(f"{where}.affected must be a list")
    found: list[Affected] = []
    for i, entry in enumerate(entries):
        here = f"{where}.affected[{i}]"
        package = entry.get("package") if isinstance(entry, Mapping) else None
        if not isinstance(package, Mapping):
            continue  # an entry without a package (OSV allows it for some ecosystems)
        if package.get("ecosystem") != ECOSYSTEM or not isinstance(package.get("name"), str):
            continue
        raw_ranges = entry.get("ranges") or []
        if not isinstance(raw_ranges, list):
            raise OsvFormatError(f"{here}.ranges must be a list")
        ranges = tuple(r for j, raw in enumerate(raw_ranges) if (r := _range(raw, f"{here}.ranges[{j}]")))
        versions = frozenset(_strings(entry.get("versions"), f"{here}.versions"))
        found.append(Affected(canonicalize_name(package["name"]), ranges, versions))
    return tuple(found)


def parse_record(raw: Any, where: str = "record") -> Advisory | None:
    """One OSV record (already JSON-decoded); None when it is withdrawn or names no PyPI package."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise OsvFormatError(f"{where}: not an OSV record (no id)")
    where = f"{where} ({raw['id']})"
    if raw.get("withdrawn"):
        return None
    affected = _affected(raw.get("affected"), where)
    if not affected:
        return None
    severity = tuple(
        f"{s.get('type')}: {s.get('score')}"
        for s in raw.get("severity") or []
        if isinstance(s, Mapping) and s.get("type") and s.get("score")
    )
    text = str(raw.get("summary") or raw.get("details") or "").strip()
    return Advisory(
        id=raw["id"],
        aliases=_strings(raw.get("aliases"), f"{where}.aliases"),
        summary=text.splitlines()[0] if text else "",
        modified=str(raw.get("modified", "")),
        affected=affected,
        severity=severity,
    )


def matching(
    advisories: Iterable[Advisory], packages: Mapping[str, str]
) -> list[tuple[str, str, Advisory, Affected]]:
    """Every (package, version, advisory, entry) where an advisory affects an installed version,
    sorted by package then advisory id."""
    wanted = {canonicalize_name(n): v for n, v in packages.items()}
    found: list[tuple[str, str, Advisory, Affected]] = []
    seen: set[tuple[str, str]] = set()
    for advisory in advisories:
        for name in sorted(advisory.names() & set(wanted)):
            entry = advisory.match(name, wanted[name])
            if entry is not None and (name, advisory.id) not in seen:
                seen.add((name, advisory.id))
                found.append((name, wanted[name], advisory, entry))
    return sorted(found, key=lambda f: (f[0], f[2].id))


def fixed_above(entry: Affected, version: str) -> Sequence[str]:
    """The entry's fixed versions above ``version`` (the upgrades that leave it)."""
    try:
        current = Version(version)
    except InvalidVersion:
        return entry.fixed()
    return [v for v in entry.fixed() if _sort_key(v) > (0, current)]
