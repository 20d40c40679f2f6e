"""Human text for the commands that make and switch generations: ``deploy``, ``install``, ``status``,
``rollback`` (``--json`` is the result's own)."""

from __future__ import annotations

from typing import TextIO

from venvkeeper.cli.messages import unchanged_line, would_not_change_line
from venvkeeper.core.results import Result
from venvkeeper.generations.results import (
    HOOKS_SKIPPED,
    CheckResult,
    DeployResult,
    RollbackResult,
    StatusResult,
)

__all__ = ["render"]


def render(result: Result, out: TextIO, err: TextIO) -> None:
    if isinstance(result, CheckResult):
        _check(result, out)
    elif isinstance(result, DeployResult):
        _deploy(result, out)
    elif isinstance(result, StatusResult):
        _status(result, out)
    elif isinstance(result, RollbackResult):
        _rollback(result, out)
    else:
        raise TypeError(f"not a deploy, status or rollback result: {result!r}")


def _packages(result: DeployResult | RollbackResult, out: TextIO) -> None:
    diff = result.packages
    for entry in diff.added:
        out.write(f"  + {entry['name']} {entry['new']}\n")
    for entry in diff.removed:
        out.write(f"  - {entry['name']} {entry['old']}\n")
    for entry in diff.changed:
        out.write(f"  ~ {entry['name']} {entry['old']} -> {entry['new']}\n")


def _check(result: CheckResult, out: TextIO) -> None:
    """``--check``: the plan. The package lines with ``--diff``, else their counts."""
    if not result.changed:
        out.write(would_not_change_line(result.env, result.generation, result.reason, result.duration_s))
        return
    out.write(f"{result.env} would change: {result.reason} [{result.duration_s:.2f}s]\n")
    _repair(result, out, "would repair", "would be refreshed")
    if result.rebuilt:
        out.write(f"  would build members: {', '.join(result.rebuilt)}\n")
    if result.reused:
        out.write(f"  would reuse members (wheel cache): {', '.join(result.reused)}\n")
    diff = result.packages
    if result.show_diff:
        _packages(result, out)
    elif diff:
        out.write(
            f"  packages: {len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed"
            " (--diff lists them)\n"
        )
    for command in result.planned_hooks:
        out.write(f"  hook would run: {command}\n")


def _repair(result: DeployResult, out: TextIO, repaired: str, refreshed: str) -> None:
    """--repair's lines: the verify findings and the distributions they were in, uv's cache entries."""
    if result.repair_findings:
        which = f" (distributions: {', '.join(result.repaired)})" if result.repaired else ""
        plural = "s" if result.repair_findings != 1 else ""
        out.write(f"  {repaired} {result.repair_findings} verify finding{plural}{which}\n")
    if result.cache_refreshed:
        out.write(f"  uv's cache {refreshed} for: {', '.join(result.cache_refreshed)}\n")


def _deploy(result: DeployResult, out: TextIO) -> None:
    if not result.changed:
        out.write(unchanged_line(result.env, result.generation, result.reason, result.duration_s))
        return
    if result.in_place:
        out.write(f"{result.env} converged in place [{result.duration_s:.2f}s]\n")
    else:
        since = f" (was {result.previous})" if result.previous is not None else ""
        out.write(f"{result.env} -> generation {result.generation}{since} [{result.duration_s:.2f}s]\n")
    if result.adopted is not None:
        out.write(f"  adopted the existing environment as generation {result.adopted}\n")
    _repair(result, out, "repaired", "refreshed")
    _packages(result, out)
    if result.rebuilt:
        out.write(f"  rebuilt members: {', '.join(result.rebuilt)}\n")
    for hook in result.hooks:
        out.write(f"  hook ok: {hook.command} ({hook.duration_s:.2f}s)\n")
    if HOOKS_SKIPPED in result.reason:
        out.write(f"  {HOOKS_SKIPPED}\n")
    if result.pruned:
        out.write(f"  removed old generations: {', '.join(map(str, result.pruned))}\n")


def _status(result: StatusResult, out: TextIO) -> None:
    out.write(f"{result.env}: {result.kind}")
    out.write(f", live generation {result.current}\n" if result.current is not None else "\n")
    for g in result.generations:
        mark = "*" if g.current else " "
        members = ", ".join(f"{k}@{v}" for k, v in g.members.items())
        out.write(
            f" {mark} {g.number:>4}  {g.created}  {g.kind:<8} python {g.python or '?':<8} "
            f"{g.packages:>3} packages  lock {g.lock_sha256[:12] or '-':<12}  {members}\n"
        )
    if result.uv_cache:
        why = f" ({result.uv_cache['why']})" if result.uv_cache.get("why") else ""
        out.write(f"uv cache: {result.uv_cache['dir']}{why}\n")


def _rollback(result: RollbackResult, out: TextIO) -> None:
    if result.restored_adopted:
        out.write(f"{result.env}: the adopted environment is live again (was generation {result.previous})\n")
    else:
        out.write(f"{result.env} -> generation {result.generation} (was {result.previous})\n")
    _packages(result, out)
