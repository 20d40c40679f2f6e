"""The one place that prints results: human text on a terminal, or one JSON object with --json."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from venvkeeper.messages import unchanged_line
from venvkeeper.result import DeployResult, ErrorResult, Result, RollbackResult, StatusResult

__all__ = ["render"]


def render(result: Result, *, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
    out = out or sys.stdout
    err = err or sys.stderr
    if as_json:
        out.write(json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n")
        return
    if isinstance(result, ErrorResult):
        _error(result, err)
    elif isinstance(result, DeployResult):
        _deploy(result, out)
    elif isinstance(result, StatusResult):
        _status(result, out)
    elif isinstance(result, RollbackResult):
        _rollback(result, out)
    else:  # pragma: no cover - every result type is listed above
        out.write(json.dumps(result.to_json()) + "\n")


def _error(result: ErrorResult, err: TextIO) -> None:
    err.write(f"error: {result.message}\n")
    if result.hint:
        err.write(f"hint: {result.hint}\n")
    if result.detail:
        err.write("\n".join(f"  | {line}" for line in result.detail.splitlines()) + "\n")


def _packages(result: DeployResult | RollbackResult, out: TextIO) -> None:
    diff = result.packages
    for entry in diff.added:
        out.write(f"  + {entry['name']} {entry['new']}\n")
    for entry in diff.removed:
        out.write(f"  - {entry['name']} {entry['old']}\n")
    for entry in diff.changed:
        out.write(f"  ~ {entry['name']} {entry['old']} -> {entry['new']}\n")


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
    _packages(result, out)
    if result.rebuilt:
        out.write(f"  rebuilt members: {', '.join(result.rebuilt)}\n")
    for hook in result.hooks:
        out.write(f"  hook ok: {hook.command} ({hook.duration_s:.2f}s)\n")
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


def _rollback(result: RollbackResult, out: TextIO) -> None:
    if result.restored_adopted:
        out.write(f"{result.env}: the adopted environment is live again (was generation {result.previous})\n")
    else:
        out.write(f"{result.env} -> generation {result.generation} (was {result.previous})\n")
    _packages(result, out)
