"""``venvkeeper audit``: the known vulnerabilities of a set of installed, locked or bundled versions.

What is audited arrives as a :class:`Subject` (its packages by name and version): the command line
builds it from the project's lock, the environment's record or the bundle (:mod:`venvkeeper.cli.compose`),
since capabilities never import each other. The advisories come from the OSV source
(:mod:`venvkeeper.audit.sources`); matching is OSV's own rule (:mod:`venvkeeper.audit.osv`).

Exit codes: 0 clean (every finding, if any, accepted by an active ignore), 1 findings, 2 no data (the
source could not be read: that is never "clean").
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from venvkeeper.audit import ignores as ignoring
from venvkeeper.audit.osv import fixed_above, matching
from venvkeeper.audit.result import AuditResult, Finding
from venvkeeper.audit.sources import Source, advisories_for

__all__ = ["Subject", "audit"]


@dataclass(frozen=True)
class Subject:
    label: str  # how the report names it
    packages: Mapping[str, str]  # name -> version, the project's own members left out


def audit(
    subject: Subject, source: Source, ignores: Sequence[ignoring.Ignore], today: datetime.date
) -> AuditResult:
    advisories = advisories_for(source, subject.packages)
    result = AuditResult(
        "audit", subject=subject.label, source=source.describe(), packages=len(subject.packages)
    )
    expired: dict[str, ignoring.Ignore] = {}
    for name, version, advisory, entry in matching(advisories, subject.packages):
        finding = Finding(
            package=name,
            version=version,
            id=advisory.id,
            aliases=advisory.aliases,
            summary=advisory.summary,
            affected=entry.text(),
            fixed=tuple(entry.fixed()),
            upgrade_to=tuple(fixed_above(entry, version)),
        )
        active, lapsed = ignoring.split([advisory.id, *advisory.aliases], ignores, today)
        if active is not None:
            result.ignored.append(Finding(**{**finding.__dict__, "ignored": active.to_json()}))
            continue
        if lapsed is not None:
            expired[lapsed.id] = lapsed
        result.findings.append(finding)
    result.expired = [i.to_json() for i in expired.values()]
    return result
