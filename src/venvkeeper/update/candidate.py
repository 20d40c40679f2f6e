"""update's third step: the candidate environment beside the live one, and the tests run in it.

The candidate is first built from the current lock (the baseline: the tests must pass on what is live,
or an update cannot be judged), while the re-lock runs; then it is made exactly the re-locked lock and
tested again. It is filled by the generation engine, as a deploy's generation is: the lock's packages and
the members' wheels by :func:`venvkeeper.generations.build.install_locked`, each member's wheel from the
member wheel cache (:mod:`venvkeeper.generations.wheelcache`) when one was built from this content on
this interpreter, with the test groups too. Nothing here touches the live environment or the source
tree's lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from venvkeeper.core import files as fsutil
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.gateways.shell import run_shell, tail
from venvkeeper.generations import build, engine, wheelcache
from venvkeeper.generations.hooks import hook_environment
from venvkeeper.generations.layout import Layout
from venvkeeper.update import live
from venvkeeper.update.preflight import Preflight
from venvkeeper.update.relock import Relocked
from venvkeeper.update.result import TestOutcome
from venvkeeper.update.session import Session, Stop, refused

__all__ = ["Baseline", "Candidate", "build_baseline", "judge_candidate"]

_TAIL_LINES = 60


@dataclass(frozen=True)
class Baseline:
    """The candidate as the current lock makes it, and the members' wheels it was given (by name)."""

    wheels: Mapping[str, Path]


@dataclass(frozen=True)
class Candidate:
    """The re-locked lock, which the tests passed with, as they did with the current one."""

    relocked: Relocked
    baseline: TestOutcome
    candidate: TestOutcome


def _member_wheels(session: Session, pre: Preflight) -> dict[str, Path]:
    """The members' wheels: from the member wheel cache when one was built from the member's content on
    the live interpreter (an update never changes the members); built afresh otherwise.

    uv would rebuild every member in each new staging copy (it keys a local build by path and
    mtime), which is most of the candidate's cost. A member built here goes into the staging copy, not
    the cache: update does not hold --env's lock, so a deploy meanwhile may prune the cache.
    """
    facts = pre.facts
    members = {m.name: m for m in facts.members if m.package}
    layout = Layout.for_env(session.env)
    digests = {name: facts.member_hashes[name] for name in members}
    wheels = wheelcache.cached(layout, digests, pre.live.interpreter)
    in_workspace = "manifest" in pre.lock or len(facts.members) > 1
    for name in sorted(set(members) - set(wheels)):
        out = pre.stage / ".venvkeeper-wheels" / name
        out.mkdir(parents=True, exist_ok=True)
        wheels[name] = engine.build_wheel(
            pre.stage, name, members[name].path, out, pre.python, in_workspace=in_workspace
        )
    return wheels


def _fill(
    session: Session, pre: Preflight, stage: Path, wheels: Callable[[], dict[str, Path]]
) -> dict[str, Path]:
    """Make the candidate exactly ``stage``'s lock (test groups too), with the members' ``wheels()``."""
    groups = tuple(sorted({*pre.groups, *pre.test_groups}))
    # The same wheels go in again when the baseline is re-filled with the re-locked lock: reinstalled,
    # as the candidate had them before.
    return build.install_locked(stage, session.candidate, pre.python, groups, wheels, reinstall_members=True)


def build_baseline(session: Session, pre: Preflight) -> Baseline:
    """Fill the candidate from the current lock (run beside the re-lock)."""
    started = time.monotonic()
    try:
        # The members are found or built while uv installs the lock's packages.
        wheels = _fill(session, pre, pre.stage, lambda: _member_wheels(session, pre))
    finally:
        session.timed("candidate", started)
    return Baseline(wheels)


def _run_tests(session: Session, pre: Preflight, what: str) -> TestOutcome:
    env = hook_environment(session.candidate, None)
    env.pop("VENVKEEPER_ENV", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the tests run in the source tree: leave no bytecode there
    env["VENVKEEPER_UPDATE"] = what
    log = session.store.log_path(session.stamp, what)
    started = time.monotonic()
    done = run_shell(
        pre.test_command, cwd=session.root, env=env, timeout=pre.test_timeout, log=log, kill_leftovers=True
    )
    session.timed("tests", started)
    return TestOutcome(
        done.ok,
        done.exit_code,
        done.exit_code is None,
        done.duration_s,
        tail(done.output, _TAIL_LINES),
        str(log),
    )


def _judge_baseline(
    session: Session, pre: Preflight, built: Future[Baseline]
) -> tuple[Baseline, TestOutcome]:
    """The tests pass on the current lock, in the baseline candidate; else nothing can be judged."""
    error = built.exception()
    if error is not None:
        reason = error.message if isinstance(error, VenvkeeperError) else str(error)
        raise refused(
            "baseline-failed",
            f"the current lock cannot be installed for its tests: {reason}",
            error.hint if isinstance(error, VenvkeeperError) else "",
        )
    session.result.baseline = outcome = _run_tests(session, pre, "baseline")
    if not outcome.ok:
        how = "timed out" if outcome.timed_out else f"exited {outcome.exit_code}"
        raise refused(
            "baseline-failed",
            f"the tests fail on the current lock (`{pre.test_command}` {how}), "
            "so the update found cannot be judged; nothing was changed",
            f"fix the tests first; the output is in {outcome.log}",
        )
    return built.result(), outcome


def judge_candidate(
    session: Session, pre: Preflight, relocked: Relocked, built: Future[Baseline]
) -> Candidate:
    """Make the candidate the re-locked lock and test it; a failure leaves everything unchanged."""
    baseline, baseline_outcome = _judge_baseline(session, pre, built)
    started = time.monotonic()
    try:
        _fill(session, pre, pre.relock_stage, lambda: dict(baseline.wheels))
    except VenvkeeperError as exc:
        raise Stop(
            "candidate-failed",
            f"the updated lock cannot be installed: {exc.message}; the update was NOT applied",
            hint=exc.hint,
        ) from None
    finally:
        session.timed("candidate", started)
    session.result.candidate = outcome = _run_tests(session, pre, "candidate")
    if outcome.ok:
        return Candidate(relocked, baseline_outcome, outcome)
    fsutil.remove_tree(session.candidate)
    session.result.live_verified = live.unchanged(session.env)
    how = "timed out" if outcome.timed_out else f"exited {outcome.exit_code}"
    raise Stop(
        "tests-failed",
        f"the tests fail with the update (`{pre.test_command}` {how}); the update was NOT applied, "
        "uv.lock and the live environment are unchanged",
        hint=f"the output is in {outcome.log}; pin the package that breaks them in "
        "[tool.venvkeeper.update.packages]",
    )
