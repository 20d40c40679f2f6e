"""What ``venvkeeper audit`` returns (printed by :mod:`venvkeeper.cli.render_audit`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.results import Result

__all__ = ["AuditResult", "Finding"]


@dataclass(frozen=True)
class Finding:
    """One installed (or locked, or bundled) version with a known advisory, in OSV's terms."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    summary: str
    affected: str  # the advisory's affected ranges, as text (">=2.0, <2.0.7")
    fixed: tuple[str, ...]  # every fixed version the advisory gives
    upgrade_to: tuple[str, ...]  # of those, the ones above the version audited
    ignored: dict[str, Any] | None = None  # the --ignore / config entry that accepts it, while active

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "version": self.version,
            "id": self.id,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "affected": self.affected,
            "fixed": list(self.fixed),
            "upgrade_to": list(self.upgrade_to),
            "ignored": self.ignored,
        }


@dataclass
class AuditResult(Result):
    command: str
    subject: str = ""  # what was audited: "uv.lock of DIR", "--env PATH (generation N)", "bundle FILE"
    source: str = ""  # where the advisories came from
    packages: int = 0  # how many distributions were audited
    findings: list[Finding] = field(default_factory=list)  # not ignored
    ignored: list[Finding] = field(default_factory=list)  # accepted by an active ignore
    expired: list[dict[str, Any]] = field(default_factory=list)  # ignores past their date that matched

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.findings else ExitCode.OK

    def payload(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "source": self.source,
            "packages": self.packages,
            "clean": not self.findings,
            "findings": [f.to_json() for f in self.findings],
            "ignored": [f.to_json() for f in self.ignored],
            "expired_ignores": self.expired,
        }
