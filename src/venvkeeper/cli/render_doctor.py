"""Human text for ``venvkeeper doctor`` and ``heal`` (``--json`` is the result's own).

On doctor's timed path: no typing at run time, and nothing of the other commands.
"""

from __future__ import annotations

from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.doctor.result import DoctorResult, HealResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from venvkeeper.core.results import Result

__all__ = ["render"]


def render(result: Result, out: TextIO, err: TextIO) -> None:
    if isinstance(result, DoctorResult):
        _doctor(result, out)
    elif isinstance(result, HealResult):
        _heal(result, out)
    else:
        raise TypeError(f"not a doctor or heal result: {result!r}")


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
    if not result.outcomes and not result.actions:
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
