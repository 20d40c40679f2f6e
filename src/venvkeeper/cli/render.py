"""The one place that prints results: human text on a terminal, or one JSON object with --json."""

from __future__ import annotations

import json
import os
import sys

from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.doctor.result import DoctorResult, HealResult
from venvkeeper.verify.result import VerifyResult

TYPE_CHECKING = False  # verify is timed: the other results (dataclasses) are imported when needed
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from venvkeeper.bundle.export import ExportResult
    from venvkeeper.core.results import Result
    from venvkeeper.generations.results import DeployResult, ErrorResult, RollbackResult, StatusResult

__all__ = ["discard_stdout", "render", "report"]


def report(command: str, as_json: bool, action: Callable[[], Result]) -> ExitCode:
    """Run a command, translate venvkeeper's errors at this one boundary, render; return the exit code."""
    from venvkeeper.core.errors import VenvkeeperError  # noqa: PLC0415

    try:
        result: Result = action()
    except VenvkeeperError as exc:
        from venvkeeper.generations.results import ErrorResult  # noqa: PLC0415

        result = ErrorResult(
            command,
            code=exc.code,
            message=exc.message,
            hint=exc.hint,
            detail=exc.detail,
            exit=exc.exit_code,
            extra=exc.extra,
            cause=exc.cause,
        )
    except KeyboardInterrupt:
        from venvkeeper.generations.results import ErrorResult  # noqa: PLC0415

        result = ErrorResult(
            command,
            code="interrupted",
            message="interrupted",
            hint="nothing was switched",
            exit=ExitCode.FAILED,
        )
    try:
        render(result, as_json=as_json)
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()
    return result.exit_code


def discard_stdout() -> None:
    """Whoever read stdout has gone (``venvkeeper deploy | head -1``): send the rest to /dev/null.

    The work is done and its exit code stands: a reader that stopped early must not turn it into 1
    (click's EPIPE handling) or 120 (Python failing to flush stdout at exit), nor print a traceback.
    This is the recipe of Python's signal documentation ("Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to flush at exit
        pass


def render(result: Result, *, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
    out = out or sys.stdout
    err = err or sys.stderr
    if as_json:
        out.write(json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n")
        return
    if isinstance(result, VerifyResult):
        _verify(result, out)
        return
    if isinstance(result, DoctorResult):
        _doctor(result, out)
        return
    if isinstance(result, HealResult):
        _heal(result, out)
        return
    _render_other(result, out, err)


def _render_other(result: Result, out: TextIO, err: TextIO) -> None:
    """The commands that are not timed: their result modules are imported only here."""
    from venvkeeper.bundle.export import ExportResult  # noqa: PLC0415
    from venvkeeper.bundle.keys import KeygenResult  # noqa: PLC0415
    from venvkeeper.bundle.pack import PackResult  # noqa: PLC0415
    from venvkeeper.cli import render_update  # noqa: PLC0415
    from venvkeeper.generations.results import DeployResult, ErrorResult, RollbackResult, StatusResult  # noqa: PLC0415
    from venvkeeper.update.result import HistoryResult, UpdateResult  # noqa: PLC0415

    if isinstance(result, ExportResult):
        _export(result, out)
    elif isinstance(result, PackResult):
        signed = ", signed" if result.signed else ""
        out.write(
            f"packed {result.wheels} wheels ({result.wheels_size} bytes) into {result.output}: "
            f"{result.size} bytes{signed}, sha256 {result.sha256[:16]} [{result.duration_s:.2f}s]\n"
        )
    elif isinstance(result, KeygenResult):
        out.write(f"wrote {result.private_key} (private, 0600) and {result.public_key}\n")
    elif isinstance(result, UpdateResult):
        render_update.update(result, out, err)
    elif isinstance(result, HistoryResult):
        render_update.history(result, out)
    elif isinstance(result, ErrorResult):
        _error(result, err)
    elif isinstance(result, DeployResult):
        _deploy(result, out)
    elif isinstance(result, StatusResult):
        _status(result, out)
    elif isinstance(result, RollbackResult):
        _rollback(result, out)
    else:  # pragma: no cover - every result type is listed above
        out.write(json.dumps(result.to_json()) + "\n")


def _export(result: ExportResult, out: TextIO) -> None:
    if result.output is None:
        out.write(result.content)  # the file itself, for a pipe
    else:
        out.write(f"wrote {result.format} to {result.output} (sha256 {result.sha256[:16]})\n")


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
    from venvkeeper.cli.messages import unchanged_line  # noqa: PLC0415

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
    if result.repair_findings:
        which = f" (distributions: {', '.join(result.repaired)})" if result.repaired else ""
        plural = "s" if result.repair_findings != 1 else ""
        out.write(f"  repaired {result.repair_findings} verify finding{plural}{which}\n")
    if result.cache_refreshed:
        out.write(f"  uv's cache refreshed for: {', '.join(result.cache_refreshed)}\n")
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
    if result.uv_cache:
        why = f" ({result.uv_cache['why']})" if result.uv_cache.get("why") else ""
        out.write(f"uv cache: {result.uv_cache['dir']}{why}\n")


def _rollback(result: RollbackResult, out: TextIO) -> None:
    if result.restored_adopted:
        out.write(f"{result.env}: the adopted environment is live again (was generation {result.previous})\n")
    else:
        out.write(f"{result.env} -> generation {result.generation} (was {result.previous})\n")
    _packages(result, out)


def _verify(result: VerifyResult, out: TextIO) -> None:
    where = f" (generation {result.generation})" if result.generation is not None else f" ({result.kind})"
    hashed = f", {result.bytes_hashed / 1e6:.1f} MB hashed" if not result.fast else ", sizes only (--fast)"
    count = len(result.findings)
    verdict = "clean" if not count else f"{count} finding{'s' if count != 1 else ''}"
    out.write(f"{result.env}{where}: {verdict} ({result.files} files{hashed}) [{result.duration_s:.2f}s]\n")
    for f in result.findings:
        subject = " ".join(x for x in (f.distribution, f.path) if x)
        out.write(f"  {f.category:<21} {subject}\n")
        if f.expected is not None or f.actual is not None:
            out.write(f"      expected {f.expected or '-'}, found {f.actual or '-'}")
            out.write(f" ({f.reference})\n" if f.reference else "\n")
        if f.files:
            kinds = ", ".join(sorted({x["category"] for x in f.files}))
            out.write(f"      and {len(f.files)} of its files ({kinds})\n")
        if f.cache:
            out.write(f"      a hard link into uv's cache ({f.cache}): the cache is damaged too;\n")
            out.write("      `venvkeeper deploy --repair` refreshes it and rebuilds\n")
    for check in result.checks:
        if check.status in ("not-possible", "skipped"):
            out.write(f"  {check.name} check {check.status.replace('-', ' ')}: {check.reason}\n")


def _doctor(result: DoctorResult, out: TextIO) -> None:
    python = ""
    if result.interpreter is not None:
        python = (
            f", Python {result.interpreter['version']}"
            if result.interpreter["runs"]
            else ", bin/python does not run"
        )
    failing = [f for f in result.findings if f.severity != "note"]
    verdict = "healthy" if not failing else f"{len(failing)} finding{'s' if len(failing) != 1 else ''}"
    out.write(f"{result.env} ({result.kind}{python}): {verdict} [{result.duration_s:.2f}s]\n")
    for f in result.findings:
        out.write(f"  {f.severity:<7} {f.code:<22} {f.path}\n")
        out.write(f"      {f.seen}\n")
        if f.repair:
            out.write(f"      heal: {f.repair}\n")
    if failing:
        out.write(f"`venvkeeper heal --env {result.env}` repairs what it can; add --dry-run to see how.\n")


def _heal(result: HealResult, out: TextIO) -> None:
    if not result.outcomes:
        out.write(f"{result.env}: healthy, nothing to do [{result.duration_s:.2f}s]\n")
        return
    head = (
        "would repair"
        if result.dry_run
        else "healed"
        if result.exit_code == ExitCode.OK
        else "not fully healed"
    )
    out.write(f"{result.env}: {head} [{result.duration_s:.2f}s]\n")
    if result.interpreter is not None:
        out.write(f"  interpreter: {result.interpreter['path']} ({result.interpreter['version']})\n")
    for action in result.actions:
        out.write(f"  {'would ' if result.dry_run else ''}{action.action} {action.path}: {action.detail}\n")
    for o in result.outcomes:
        why = f" ({o.reason})" if o.reason and o.outcome != "would-repair" else ""
        out.write(f"  {o.outcome:<12} {o.problem.code} {o.problem.path}{why}\n")
    if result.generation is not None:
        out.write(f"  {result.env} -> generation {result.generation}\n")
    if result.kept:
        out.write(f"  the old environment held files no distribution owns; kept at {result.kept}\n")
