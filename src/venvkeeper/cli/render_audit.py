"""Human text for ``audit`` (``--json`` is the result's own)."""

from __future__ import annotations

from typing import TextIO

from venvkeeper.audit.result import AuditResult, Finding
from venvkeeper.core.results import Result

__all__ = ["render"]


def _finding(finding: Finding, out: TextIO) -> None:
    aliases = f" ({', '.join(finding.aliases)})" if finding.aliases else ""
    out.write(f"  {finding.package} {finding.version}: {finding.id}{aliases}: {finding.summary}\n")
    fixed = ", ".join(finding.upgrade_to) or "no fixed version above it"
    out.write(f"      affected {finding.affected}; fixed in {fixed}\n")


def render(result: Result, out: TextIO, err: TextIO) -> None:
    if not isinstance(result, AuditResult):
        raise TypeError(f"not an audit result: {result!r}")
    found = len(result.findings)
    verdict = (
        "no known vulnerabilities"
        if not found
        else f"{found} known vulnerabilit{'y' if found == 1 else 'ies'}"
    )
    out.write(f"{result.subject}: {verdict} in {result.packages} packages ({result.source})\n")
    for finding in result.findings:
        _finding(finding, out)
    for finding in result.ignored:
        why = finding.ignored or {}
        out.write(
            f"  ignored: {finding.package} {finding.version}: {finding.id} until {why.get('until')}: "
            f"{why.get('reason')}\n"
        )
    for lapsed in result.expired:
        where = f"until {lapsed['until']}, {lapsed['origin']}"
        out.write(f"  expired ignore: {lapsed['id']} ({where}): reported again\n")
