"""What ``venvkeeper doctor`` and ``venvkeeper heal`` return (plain classes: doctor is timed)."""

from __future__ import annotations

from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.results import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from venvkeeper.doctor.diagnosis import Problem

__all__ = ["Action", "DoctorResult", "HealResult", "Outcome"]


class DoctorResult(Result):
    def __init__(
        self,
        *,
        env: str,
        directory: str,
        kind: str,
        interpreter: dict[str, Any] | None,
        packages_python: str | None,
        managed_by: str | None,
        findings: list[Problem],
        duration_s: float,
    ) -> None:
        self.command = "doctor"
        self.env = env
        self.directory = directory
        self.kind = kind
        self.interpreter = interpreter
        self.packages_python = packages_python
        self.managed_by = managed_by
        self.findings = findings
        self.duration_s = duration_s

    @property
    def healthy(self) -> bool:
        return all(f.severity == "note" for f in self.findings)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.healthy else ExitCode.FAILED

    def payload(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "directory": self.directory,
            "kind": self.kind,
            "interpreter": self.interpreter,
            "packages_python": self.packages_python,
            "managed_by": self.managed_by,
            "healthy": self.healthy,
            "findings": [f.to_json() for f in self.findings],
            "duration_s": round(self.duration_s, 3),
        }


class Action:
    """One repair heal makes (or, with --dry-run, would make)."""

    def __init__(self, action: str, path: str, detail: str, **data: Any) -> None:
        # relink, write-pyvenv-cfg, rewrite-paths, create-lib64, convert, rebuild, redeploy, reinstall
        self.action = action
        self.path = path
        self.detail = detail
        self.data = data  # what the acting layer needs; not shown

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "path": self.path, "detail": self.detail}


class Outcome:
    def __init__(self, problem: Problem, outcome: str, reason: str | None = None) -> None:
        self.problem = problem
        self.outcome = outcome  # repaired, still-broken, skipped, would-repair
        self.reason = reason

    def to_json(self) -> dict[str, str | None]:
        return {
            "code": self.problem.code,
            "path": self.problem.path,
            "seen": self.problem.seen,
            "outcome": self.outcome,
            "reason": self.reason,
        }


class HealResult(Result):
    def __init__(
        self,
        *,
        env: str,
        directory: str,
        dry_run: bool,
        forced: bool,
        interpreter: dict[str, Any] | None,
        actions: list[Action],
        outcomes: list[Outcome],
        changed: bool,
        generation: int | None,
        kept: str | None,
        duration_s: float,
    ) -> None:
        self.command = "heal"
        self.env = env
        self.directory = directory
        self.dry_run = dry_run
        self.forced = forced
        self.interpreter = interpreter
        self.actions = actions
        self.outcomes = outcomes
        self.changed = changed
        self.generation = generation
        self.kept = kept  # the replaced environment, kept because it held files no distribution owns
        self.duration_s = duration_s

    @property
    def exit_code(self) -> ExitCode:
        bad = ("would-repair", "skipped", "still-broken") if self.dry_run else ("skipped", "still-broken")
        unhealthy = any(o.outcome in bad and o.problem.severity != "note" for o in self.outcomes)
        return ExitCode.FAILED if unhealthy else ExitCode.OK

    def payload(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "directory": self.directory,
            "dry_run": self.dry_run,
            "forced": self.forced,
            "interpreter": self.interpreter,
            "actions": [a.to_json() for a in self.actions],
            "outcomes": [o.to_json() for o in self.outcomes],
            "changed": self.changed,
            "generation": self.generation,
            "kept": self.kept,
            "duration_s": round(self.duration_s, 3),
        }
