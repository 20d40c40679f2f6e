"""What commands return. The renderer (:mod:`venvkeeper.cli.render`) is the only thing that prints them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.results import Result
from venvkeeper.project.plan import PackageDiff

if TYPE_CHECKING:
    from venvkeeper.generations.hooks import HookRun

__all__ = [
    "HOOKS_SKIPPED",
    "CheckResult",
    "DeployResult",
    "ErrorResult",
    "GenerationInfo",
    "Result",
    "RollbackResult",
    "StatusResult",
]

# In a deploy's or install's reason when --no-hooks kept post-deploy hooks from running (shown as a line).
HOOKS_SKIPPED = "post-deploy hooks skipped (--no-hooks)"


@dataclass
class ErrorResult(Result):
    command: str
    code: str = "error"
    message: str = ""
    hint: str = ""
    detail: str = ""
    exit: ExitCode = ExitCode.FAILED
    # Whatever the command managed to report before failing (e.g. the hook runs).
    extra: dict[str, Any] = field(default_factory=dict)
    cause: str = ""  # a failed uv run's real cause (venvkeeper.gateways.uvfailure.CAUSES)

    @property
    def exit_code(self) -> ExitCode:
        return self.exit

    def payload(self) -> dict[str, Any]:
        return {
            **self.extra,
            "error": {
                "code": self.code,
                "message": self.message,
                "hint": self.hint,
                "cause": self.cause or None,
                "detail": self.detail,
            },
        }


@dataclass
class DeployResult(Result):
    command: str
    env: str = ""
    changed: bool = False
    generation: int | None = None
    previous: int | None = None
    packages: PackageDiff = field(default_factory=PackageDiff)
    rebuilt: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    hooks: list[HookRun] = field(default_factory=list)
    adopted: int | None = None
    pruned: list[int] = field(default_factory=list)
    in_place: bool = False
    reason: str = ""
    duration_s: float = 0.0
    repair_findings: int = 0  # --repair: what verify found in the live environment
    repaired: list[str] = field(default_factory=list)  # --repair: distributions verify found damaged
    cache_refreshed: list[str] = field(default_factory=list)  # --repair: their uv cache entries dropped
    uv_cache: dict[str, str] | None = None  # where uv's cache was and why (None: uv did not run)
    show_diff: bool = False  # --diff: ``diff`` in JSON (before/after lines); the package lines in text

    def payload(self) -> dict[str, Any]:
        diff = {"diff": self.packages.before_after()} if self.show_diff else {}
        return {
            "env": self.env,
            "changed": self.changed,
            "generation": self.generation,
            "previous": self.previous,
            "reason": self.reason,
            # The lists the issue names at top level, and grouped for readers who want one key.
            "added": self.packages.added,
            "removed": self.packages.removed,
            "packages": self.packages.to_json(),
            "rebuilt": self.rebuilt,
            "reused": self.reused,
            "hooks": [h.to_json() for h in self.hooks],
            "adopted": self.adopted,
            "pruned": self.pruned,
            "in_place": self.in_place,
            "repair_findings": self.repair_findings,
            "repaired": self.repaired,
            "cache_refreshed": self.cache_refreshed,
            "uv_cache": self.uv_cache,
            "duration_s": round(self.duration_s, 3),
            **diff,
        }


@dataclass
class CheckResult(DeployResult):
    """``deploy --check`` / ``install --check``: what the command would do; nothing was written.
    ``changed`` means "would change", and has an exit code of its own (ExitCode.WOULD_CHANGE)."""

    planned_hooks: list[str] = field(default_factory=list)  # the post-deploy hooks that would run

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.WOULD_CHANGE if self.changed else ExitCode.OK

    def payload(self) -> dict[str, Any]:
        found = super().payload()
        found["check"] = True
        found["hooks"] = [{"command": command} for command in self.planned_hooks]
        return found


@dataclass
class GenerationInfo:
    number: int
    current: bool
    kind: str
    created: str
    python: str
    packages: int
    members: dict[str, str]
    lock_sha256: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StatusResult(Result):
    command: str
    env: str = ""
    kind: str = ""
    current: int | None = None
    generations: list[GenerationInfo] = field(default_factory=list)
    uv_cache: dict[str, str] | None = None  # the live generation's uv cache and why there

    def payload(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "kind": self.kind,
            "current": self.current,
            "generations": [g.to_json() for g in self.generations],
            "uv_cache": self.uv_cache,
        }


@dataclass
class RollbackResult(Result):
    command: str
    env: str = ""
    generation: int | None = None
    previous: int | None = None
    packages: PackageDiff = field(default_factory=PackageDiff)
    restored_adopted: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "generation": self.generation,
            "previous": self.previous,
            "added": self.packages.added,
            "removed": self.packages.removed,
            "packages": self.packages.to_json(),
            "restored_adopted": self.restored_adopted,
        }
