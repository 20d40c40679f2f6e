"""Accepted advisories: each with a reason and an expiry date, from ``--ignore ID:YYYY-MM-DD:REASON``
or ``[tool.venvkeeper.audit] ignore = [{id, until, reason}]``.

An ignore matches an advisory by its id or any alias (a CVE id ignores the GHSA and PYSEC records of
the same flaw). Past its date it ignores nothing: the finding comes back, and the report says the
ignore expired, so an acceptance is looked at again rather than forgotten.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.core.config import reject_unknown
from venvkeeper.core.errors import ConfigError

__all__ = ["AuditConfig", "Ignore", "parse_audit_config", "parse_ignore"]

_KEYS = {"osv", "ignore"}
_IGNORE_KEYS = {"id", "until", "reason"}


@dataclass(frozen=True)
class Ignore:
    id: str
    until: datetime.date
    reason: str
    origin: str  # "--ignore" or the pyproject.toml it came from

    def names(self, ids: Iterable[str]) -> bool:
        return self.id.upper() in {i.upper() for i in ids}

    def active(self, today: datetime.date) -> bool:
        return today <= self.until

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "until": self.until.isoformat(), "reason": self.reason, "origin": self.origin}


@dataclass(frozen=True)
class AuditConfig:
    osv: str | None = None
    ignores: tuple[Ignore, ...] = ()


def _date(text: Any, where: str, hint: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a date (YYYY-MM-DD)", hint=hint) from None


def parse_ignore(text: str) -> Ignore:
    """``ID:YYYY-MM-DD:REASON`` (the reason may hold colons)."""
    hint = "write --ignore ID:YYYY-MM-DD:REASON, e.g. --ignore GHSA-xxxx-xxxx-xxxx:2027-01-31:'no fix yet'"
    parts = text.split(":", 2)
    if len(parts) != 3 or not parts[0].strip() or not parts[2].strip():
        raise ConfigError(f"--ignore {text}: needs an id, an expiry date and a reason", hint=hint)
    return Ignore(parts[0].strip(), _date(parts[1], f"--ignore {text}", hint), parts[2].strip(), "--ignore")


def parse_audit_config(pyproject: Mapping[str, Any], path: Path) -> AuditConfig:
    table = pyproject.get("tool", {}).get("venvkeeper", {}).get("audit", {})
    where = "[tool.venvkeeper.audit]"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where} must be a table", hint=f"fix it in {path}")
    reject_unknown(table, _KEYS, where, path)
    osv = table.get("osv")
    if osv is not None and (not isinstance(osv, str) or not osv):
        raise ConfigError(f"{path}: {where} osv must be a URL or a path", hint=f"fix it in {path}")
    entries = table.get("ignore", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: {where} ignore must be a list of tables", hint=f"fix it in {path}")
    ignores: list[Ignore] = []
    for i, entry in enumerate(entries):
        here = f"{path}: {where} ignore[{i}]"
        hint = f"each ignore needs id, until (YYYY-MM-DD) and reason; fix it in {path}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here} must be a table", hint=hint)
        reject_unknown(entry, _IGNORE_KEYS, f"{where} ignore[{i}]", path)
        if not all(isinstance(entry.get(k), str | datetime.date) and entry.get(k) for k in _IGNORE_KEYS):
            raise ConfigError(f"{here} needs id, until and reason", hint=hint)
        ignores.append(
            Ignore(str(entry["id"]), _date(entry["until"], here, hint), str(entry["reason"]), str(path))
        )
    return AuditConfig(osv, tuple(ignores))


def split(
    ids: Sequence[str], ignores: Sequence[Ignore], today: datetime.date
) -> tuple[Ignore | None, Ignore | None]:
    """For one finding's ids (the advisory's id and aliases): the active ignore that covers it, and an
    expired one that would have (either None)."""
    named = [i for i in ignores if i.names(ids)]
    active = next((i for i in named if i.active(today)), None)
    expired = next((i for i in named if not i.active(today)), None)
    return active, None if active is not None else expired
