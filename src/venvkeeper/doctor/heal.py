"""``venvkeeper heal``: carry out the repairs doctor proposes, then run doctor again.

The plan comes from :mod:`healplan` (pure). The interpreter is found by :mod:`find_interpreter`; the
repairs are carried out by :mod:`inplace` (file changes, each file backed up first and put back if the
environment comes out worse), :mod:`rebuild` (a plain environment built beside the old one, swapped in
only when complete and passing doctor) or :mod:`redeploy` (an environment venvkeeper built, rebuilt by
the deploy the command line passes in). Here: the order of it all, and the re-check.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from venvkeeper.core import progress
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.lazy import lazy
from venvkeeper.doctor import healplan
from venvkeeper.doctor.diagnosis import Problem, diagnose, requested_minor
from venvkeeper.doctor.envfacts import gather
from venvkeeper.doctor.find_interpreter import choose_interpreter, requested
from venvkeeper.doctor.recovery import parent_locked, recover
from venvkeeper.doctor.redeploy import Redeployer, redeploy, redeploy_check
from venvkeeper.doctor.result import HealResult, Outcome

if TYPE_CHECKING:
    from venvkeeper.doctor import inplace, rebuild, stablelink
else:  # the repairs themselves: a heal with nothing to repair (the common case) does not load them
    inplace = lazy("venvkeeper.doctor.inplace")
    rebuild = lazy("venvkeeper.doctor.rebuild")
    stablelink = lazy("venvkeeper.doctor.stablelink")

__all__ = ["heal"]

_STEPS = {"redeploy": "redeploying", "rebuild": "rebuilding the environment beside it"}


def heal(
    env: str,
    *,
    redeployer: Redeployer,
    python: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    link_root: str | None = None,
) -> HealResult:
    """Heal ``env``; ``redeployer`` rebuilds an environment venvkeeper deployed (deploy, as a repair).
    ``link_root``: then name the interpreter through ``link_root/pythonX.Y`` (:mod:`stablelink`)."""
    started = time.monotonic()
    if dry_run:
        result = _heal(env, python, force, started, redeployer, dry_run=True, recovered=None)
        if link_root:
            stablelink.link_through_root(result, link_root, dry_run=True)
        return result
    # One heal at a time, from the first look to the last: a second heal waits, then sees the healed
    # environment (facts read before the first one finished would rebuild from what is gone).
    try:
        with parent_locked(os.path.realpath(env)):
            recovered = recover(env)
            result = _heal(env, python, force, started, redeployer, dry_run=False, recovered=recovered)
            if link_root:
                stablelink.link_through_root(result, link_root, dry_run=False)
            result.duration_s = time.monotonic() - started
            return result
    except OSError as exc:
        where = exc.filename or env
        raise VenvkeeperError(
            f"{where}: {exc.strerror or exc}",
            hint="heal needs to write the environment and its parent directory; run it as their owner",
        ) from None


def _heal(
    env: str,
    python: str | None,
    force: bool,
    started: float,
    redeployer: Redeployer,
    *,
    dry_run: bool,
    recovered: str | None,
) -> HealResult:
    facts = gather(env)
    problems = diagnose(facts)
    target = None
    if python and (force or not facts.managed_by) and not any(p.code == "version-mismatch" for p in problems):
        # --python naming another minor asks for a rebuild even of a healthy environment.
        target = requested(facts, python)
        asked = requested_minor(facts, target.minor, target.path)
        problems += [asked] if asked is not None else []
    if target is None and any(p.severity != "note" for p in problems) and (force or not facts.managed_by):
        target = choose_interpreter(facts, problems, python)
    plan = healplan.plan(facts, problems, target=target, redeploy=redeploy_check(facts, env), force=force)
    generation: int | None = None
    kept: str | None = None
    failure: str | None = None
    after: list[Problem] | None = None
    if dry_run:
        pass
    elif not plan.actions:
        after = [p for p in problems if p.key in plan.skipped]
    else:
        first = plan.actions[0]
        # A step on a terminal (a redeploy shows deploy's own steps inside it).
        with progress.step(_STEPS.get(first.action, "repairing in place")) as step:
            if first.action == "redeploy":  # deploy takes the environment's own lock
                generation, failure = redeploy(redeployer, env, first, facts)
            elif first.action == "rebuild":
                kept, failure = rebuild.rebuild(facts, first)
            else:
                failure = inplace.edit_in_place(facts, plan, problems)
            if failure is not None:
                step.failed(f"{step.label}: {failure}")
        after = progress.call("checking again", lambda: diagnose(gather(env)))
    return HealResult(
        env=env,
        directory=facts.root,
        dry_run=dry_run,
        forced=force,
        interpreter=None if target is None else target.to_json(),
        actions=plan.actions,
        outcomes=_outcomes(problems, plan, after, failure),
        changed=bool(plan.actions) and not dry_run and failure is None,
        generation=generation,
        kept=kept or recovered,
        duration_s=time.monotonic() - started,
    )


def _outcomes(
    problems: list[Problem], plan: healplan.Plan, after: list[Problem] | None, failure: str | None
) -> list[Outcome]:
    """Each finding's fate: compared with what doctor sees after the repair (``after``; None: a dry run)."""
    still = {p.key: p for p in after or []}
    outcomes: list[Outcome] = []
    for problem in problems:
        if problem.severity == "note":
            continue
        if problem.key in plan.skipped:
            outcomes.append(Outcome(problem, "skipped", plan.skipped[problem.key]))
        elif problem.key not in plan.covers:
            outcomes.append(Outcome(problem, "skipped", "heal has no repair for it"))
        elif after is None:
            outcomes.append(Outcome(problem, "would-repair", plan.covers[problem.key].detail))
        elif failure is not None:
            outcomes.append(Outcome(problem, "still-broken", failure))
        elif problem.key in still:
            outcomes.append(
                Outcome(problem, "still-broken", f"doctor still sees it: {still[problem.key].seen}")
            )
        else:
            outcomes.append(Outcome(problem, "repaired"))
    before = {p.key for p in problems}
    for problem in after or []:
        if problem.key not in before and problem.severity != "note":
            outcomes.append(Outcome(problem, "still-broken", "found after the repair"))
    return outcomes
