"""Human text for ``venvkeeper update`` and ``update --history`` (``--json`` is the result's own)."""

from __future__ import annotations

from typing import Any, TextIO

from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.results import Result
from venvkeeper.update import security
from venvkeeper.update.result import HistoryResult, TestOutcome, UpdateResult

__all__ = ["render"]


def render(result: Result, out: TextIO, err: TextIO) -> None:
    if isinstance(result, UpdateResult):
        _update(result, out, err)
    elif isinstance(result, HistoryResult):
        _history(result, out)
    else:
        raise TypeError(f"not an update or update --history result: {result!r}")


def _tests(name: str, outcome: TestOutcome | None) -> str | None:
    if outcome is None:
        return None
    verdict = (
        "passed"
        if outcome.ok
        else ("timed out" if outcome.timed_out else f"failed (exit {outcome.exit_code})")
    )
    return f"{name} {verdict} in {outcome.duration_s:.1f}s"


def _lock(result: UpdateResult) -> str:
    if result.reverted:
        committed = str(result.committed)[:12]
        return f"commit {committed} was reverted by {result.reverted[:12]}; uv.lock is as before"
    if result.committed:
        return f"committed {result.committed[:12]} ({'pushed' if result.pushed else 'not pushed'})"
    if result.restored:
        return "restored byte for byte; no commit is left"
    return "unchanged"


def _mail(note: dict[str, Any]) -> str:
    if note.get("sent"):
        return f"sent to {', '.join(note.get('to', []))}"
    if note.get("error"):
        return f"NOT sent: {note['error']}"
    return f"not sent ({note.get('skipped')})"


def _update(result: UpdateResult, out: TextIO, err: TextIO) -> None:
    out.write(
        f"update {result.project} -> {result.env} ({result.policy} policy, host {result.host}"
        + (f", groups {', '.join(result.groups)}" if result.groups else "")
        + ")\n"
    )
    if result.recovered:
        out.write(f"  recovered: {result.recovered}\n")
    if result.changes:
        width = max(len(c.name) for c in result.changes)
        label = "would change" if result.dry_run else "changes"
        out.write(f"  {label}:\n")
        for c in result.changes:
            origin = "direct" if c.direct else "transitive"
            out.write(f"    {c.name:<{width}}  {c.old or '-'} -> {c.new or '-'}  {c.kind}, {origin}\n")
    if result.held:
        out.write(f"  held at the locked version (uv moved them past the policy): {', '.join(result.held)}\n")
    advisories = security.lines(None if result.security is None else result.security.to_json())
    if advisories:
        out.write("  advisories:\n" + "".join(f"    {line}\n" for line in advisories))
    tests = [t for t in (_tests("baseline", result.baseline), _tests("candidate", result.candidate)) if t]
    if tests:
        out.write(f"  tests: {'; '.join(tests)}\n")
    out.write(f"  lock: {_lock(result)}\n")
    live = (
        "unchanged" if not result.live_changed else f"generation {result.generation} (was {result.previous})"
    )
    if result.live_verified is not None:
        live += ", verified clean" if result.live_verified else ", verify found problems"
    out.write(f"  live environment: {live}\n")
    note = result.notification
    out.write(f"  mail: {_mail(note)}\n")
    total = result.durations.get("total", 0.0)
    if result.exit_code in (ExitCode.OK, ExitCode.NOTIFY_FAILED):
        out.write(f"{result.outcome}: {result.reason} [{total:.2f}s]\n")
    else:
        err.write(f"error: {result.outcome}: {result.reason}\n")
        if result.hint:
            err.write(f"hint: {result.hint}\n")
        failed = result.candidate if result.candidate and not result.candidate.ok else result.baseline
        if failed is not None and not failed.ok and failed.output_tail:
            err.write("\n".join(f"  | {line}" for line in failed.output_tail.splitlines()) + "\n")
    if result.exit_code == ExitCode.NOTIFY_FAILED:
        err.write(f"error: the mail could not be sent: {note.get('error')}\n")


def _history(result: HistoryResult, out: TextIO) -> None:
    if not result.entries:
        out.write(f"no update has run for {result.env} ({result.path} does not exist yet)\n")
        return
    for entry in result.entries:
        changes = entry.get("changes") or []
        summary = ", ".join(f"{c['name']} {c.get('old') or '-'}->{c.get('new') or '-'}" for c in changes[:3])
        if len(changes) > 3:
            summary += f" and {len(changes) - 3} more"
        mail = "" if entry.get("notification", {}).get("error") is None else "  [mail failed]"
        out.write(
            f"{entry.get('time')}  {entry.get('outcome'):<16} {summary or entry.get('reason', '')}{mail}\n"
        )
