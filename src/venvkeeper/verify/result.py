"""What ``venvkeeper verify`` returns (plain classes: verify's start-up time is measured)."""

from __future__ import annotations

from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.results import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from venvkeeper.generations.findings import Finding
    from venvkeeper.generations.inspection import Check

__all__ = ["ReceiptResult", "VerifyResult"]


class VerifyResult(Result):
    def __init__(
        self,
        *,
        env: str,
        directory: str,
        kind: str,
        generation: int | None,
        fast: bool,
        checks: list[Check],
        findings: list[Finding],
        files: int,
        bytes_hashed: int,
        duration_s: float,
    ) -> None:
        self.command = "verify"
        self.env = env
        self.directory = directory
        self.kind = kind  # "generation", "in-place" or "venv" (not deployed by venvkeeper)
        self.generation = generation
        self.fast = fast
        self.checks = checks
        self.findings = findings
        self.files = files
        self.bytes_hashed = bytes_hashed
        self.duration_s = duration_s

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.findings else ExitCode.OK

    def payload(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "directory": self.directory,
            "kind": self.kind,
            "generation": self.generation,
            "fast": self.fast,
            "clean": not self.findings,
            "checks": [c.to_json() for c in self.checks],
            "findings": [f.to_json() for f in self.findings],
            "files": self.files,
            "bytes_hashed": self.bytes_hashed,
            "duration_s": round(self.duration_s, 3),
        }


class ReceiptResult(Result):
    """``venvkeeper receipt``: the signed DSSE envelope (written to ``output``, else printed)."""

    def __init__(
        self,
        *,
        command: str,
        env: str,
        output: str | None,
        keyid: str,
        statement: dict[str, Any],
        envelope: dict[str, Any],
    ) -> None:
        self.command = command
        self.env = env
        self.output = output
        self.keyid = keyid
        self.statement = statement
        self.envelope = envelope

    def payload(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "output": self.output,
            "keyid": self.keyid,
            "statement": self.statement,
            "envelope": self.envelope,
        }
