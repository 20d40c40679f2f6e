"""What ``venvkeeper update`` did, for the renderer, the history and the mail (docs/update.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.results import Result
from venvkeeper.update.plan import Change
from venvkeeper.update.security import SecurityReport

__all__ = ["OUTCOMES", "HistoryResult", "TestOutcome", "UpdateResult"]

# outcome -> exit code when the mail went out (or was not needed)
OUTCOMES: dict[str, ExitCode] = {
    "updated": ExitCode.OK,
    "no-updates": ExitCode.OK,
    "would-update": ExitCode.OK,
    "preflight-failed": ExitCode.BAD_INPUT,
    "relock-failed": ExitCode.FAILED,
    "candidate-failed": ExitCode.FAILED,
    "tests-failed": ExitCode.FAILED,
    "commit-failed": ExitCode.FAILED,
    "push-rejected": ExitCode.FAILED,
    "deploy-failed": ExitCode.FAILED,
    "busy": ExitCode.BUSY,
    # Something outside the plan failed (an OS error, git refusing an undo): the reason says what.
    "error": ExitCode.FAILED,
}


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    exit_code: int | None  # None: killed at the timeout
    timed_out: bool
    duration_s: float
    output_tail: str
    log: str | None

    def to_json(self, *, brief: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "duration_s": round(self.duration_s, 3),
        }
        if not brief:
            data.update(output_tail=self.output_tail, log=self.log)
        return data


@dataclass
class UpdateResult(Result):
    project: str
    env: str
    host: str
    policy: str
    dry_run: bool = False
    command: str = "update"
    outcome: str = "busy"
    check: str | None = None  # the preflight check that failed
    reason: str = ""
    hint: str = ""
    groups: list[str] = field(default_factory=list)
    groups_from: str = ""
    changes: list[Change] = field(default_factory=list)
    # Packages held at their locked version because uv's first resolution moved them past their rule.
    held: list[str] = field(default_factory=list)
    lock_changed: bool = False
    backup: str | None = None
    committed: str | None = None
    pushed: bool = False
    restored: bool = False
    reverted: str | None = None  # the revert commit after a failed deploy
    live_changed: bool = False
    generation: int | None = None
    previous: int | None = None
    live_verified: bool | None = None
    baseline: TestOutcome | None = None
    candidate: TestOutcome | None = None
    notification: dict[str, Any] = field(
        default_factory=lambda: {"sent": False, "to": [], "error": None, "skipped": "not attempted"}
    )
    durations: dict[str, float] = field(default_factory=dict)
    recovered: str | None = None  # what this run finished or undid of a killed one
    lock_diff: str = ""  # for the mail; not in the JSON (the lock itself is in git)
    project_name: str | None = None  # the mail's: the root project's name, once its pyproject is read
    security: SecurityReport | None = None  # None: no advisory source, no security configured

    @property
    def exit_code(self) -> ExitCode:
        code = OUTCOMES[self.outcome]
        if code == ExitCode.OK and self.notification.get("error"):
            return ExitCode.NOTIFY_FAILED
        return code

    def payload(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "check": self.check,
            "reason": self.reason,
            "hint": self.hint,
            "project": self.project,
            "env": self.env,
            "host": self.host,
            "policy": self.policy,
            "groups": self.groups,
            "groups_from": self.groups_from,
            "dry_run": self.dry_run,
            "changes": [c.to_json() for c in self.changes],
            "held": self.held,
            "lock": {
                "changed": self.lock_changed,
                "backup": self.backup,
                "committed": self.committed,
                "pushed": self.pushed,
                "restored": self.restored,
                "reverted": self.reverted,
            },
            "live": {
                "changed": self.live_changed,
                "generation": self.generation,
                "previous": self.previous,
                "verified": self.live_verified,
            },
            "tests": {
                "baseline": None if self.baseline is None else self.baseline.to_json(),
                "candidate": None if self.candidate is None else self.candidate.to_json(),
            },
            "notification": self.notification,
            "durations": {k: round(v, 3) for k, v in self.durations.items()},
            "recovered": self.recovered,
            "security": None if self.security is None else self.security.to_json(),
        }

    def history_entry(self, time: str) -> dict[str, Any]:
        """The line ``history.jsonl`` keeps of this run: no output tails, no lock diff."""
        return {
            "time": time,
            "outcome": self.outcome,
            "check": self.check,
            "reason": self.reason,
            "policy": self.policy,
            "groups": self.groups,
            "dry_run": self.dry_run,
            "changes": [c.to_json() for c in self.changes],
            "lock": {"committed": self.committed, "pushed": self.pushed, "reverted": self.reverted},
            "live": {"generation": self.generation, "changed": self.live_changed},
            "tests": {
                "baseline": None if self.baseline is None else self.baseline.to_json(brief=True),
                "candidate": None if self.candidate is None else self.candidate.to_json(brief=True),
            },
            "notification": {"sent": self.notification.get("sent"), "error": self.notification.get("error")},
            "durations": {k: round(v, 3) for k, v in self.durations.items()},
            "exit_code": int(self.exit_code),
            "recovered": self.recovered,
            "security": None if self.security is None else self.security.brief(),
        }


@dataclass
class HistoryResult(Result):
    env: str
    path: str
    entries: list[dict[str, Any]]
    command: str = "update-history"

    def payload(self) -> dict[str, Any]:
        return {"env": self.env, "path": self.path, "history": self.entries}
