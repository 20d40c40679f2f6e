"""update's advisories, built from audit's sources where capabilities meet (they never import each other).

update declares what it needs (:class:`venvkeeper.update.security.AdvisorySource`); this module
builds it from :mod:`venvkeeper.audit`: the source is ``--osv``, else ``[tool.venvkeeper.audit] osv``,
else ``$VENVKEEPER_OSV`` (none: update's security checks are off), and the audit table's active
ignores apply to update as they do to audit.
"""

from __future__ import annotations

import datetime
import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path

from venvkeeper.audit import ignores, osv, sources
from venvkeeper.core.errors import ConfigError
from venvkeeper.update.security import Advisories, AdvisorySource, Known

__all__ = ["OSV_VARIABLE", "for_update"]

OSV_VARIABLE = "VENVKEEPER_OSV"  # as audit's (cli/commands_supply.py)


class _Source:
    """Advisories for update from one OSV source. An export is read once per package name; the API is
    asked per (name, version), as it answers."""

    def __init__(self, source: sources.Source, accepted: tuple[ignores.Ignore, ...]) -> None:
        self.source, self.accepted = source, accepted
        self.loaded: dict[str, list[osv.Advisory]] = {}  # an export's records, by package name
        self.today = datetime.date.today()

    def describe(self) -> str:
        return self.source.describe()

    def _records(self, asked: Mapping[str, str]) -> list[osv.Advisory]:
        if self.source.kind == "api":
            return sources.advisories_for(self.source, asked)
        missing = {n: v for n, v in asked.items() if n not in self.loaded}
        for advisory in sources.advisories_for(self.source, missing) if missing else []:
            for name in advisory.names() & set(missing):
                self.loaded.setdefault(name, []).append(advisory)
        for name in missing:
            self.loaded.setdefault(name, [])
        unique = {a.id: a for name in asked for a in self.loaded[name]}
        return list(unique.values())

    def affecting(self, packages: Mapping[str, Collection[str]]) -> dict[tuple[str, str], list[Known]]:
        # One version per name in each question: the API and matching() take a name -> version map.
        rounds: list[dict[str, str]] = []
        for name, versions in packages.items():
            for i, version in enumerate(sorted(set(versions))):
                if len(rounds) <= i:
                    rounds.append({})
                rounds[i][name] = version
        found: dict[tuple[str, str], list[Known]] = {}
        for asked in rounds:
            for name, version, advisory, entry in osv.matching(self._records(asked), asked):
                active, _ = ignores.split((advisory.id, *advisory.aliases), self.accepted, self.today)
                if active is None:
                    known = Known(advisory.id, advisory.aliases, advisory.summary, tuple(entry.fixed()))
                    found.setdefault((name, version), []).append(known)
        return found


def _audit_config(root: Path) -> ignores.AuditConfig:
    path = root / "pyproject.toml"
    try:
        pyproject = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}", hint="fix pyproject.toml") from None
    return ignores.parse_audit_config(pyproject, path)


def for_update(given: str | None) -> Advisories:
    """update's advisory source for a project root, from ``--osv`` (``given``), the config or the
    environment; None when none is configured."""

    def build(root: Path) -> AdvisorySource | None:
        config = _audit_config(root)
        if given:
            source = sources.parse_source(given, "--osv")
        elif config.osv:
            source = sources.parse_source(config.osv, "[tool.venvkeeper.audit] osv")
        elif os.environ.get(OSV_VARIABLE):
            source = sources.parse_source(os.environ[OSV_VARIABLE], f"${OSV_VARIABLE}")
        else:
            return None
        return _Source(source, config.ignores)

    return build
