"""update's third step: the tests, on the current lock and on the re-locked one, each in an environment
made of the generation it judges.

The baseline (the tests must pass on what is live, or an update cannot be judged) runs in a hard-link
clone of the live generation with the test groups added (``uv sync --inexact``), built while the re-lock
runs. The next generation is then built from the re-locked lock beside the live one, as a deploy builds
it (:mod:`venvkeeper.update.nextgen`), while the baseline's tests run; the candidate's tests run in a
hard-link clone of *that* generation with the test groups added. So the files the tests imported are
the files that go live: ship switches to the generation instead of building it again. Each test
environment lives at ``STATE/update/test-NNNN``, a path as long as ``generations/NNNN``, so the clone
rewrites the scripts that name the generation's directory byte for byte
(:mod:`venvkeeper.generations.clone`). Nothing here touches the live environment or the source tree.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from venvkeeper.core import files as fsutil
from venvkeeper.core import progress
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.lazy import lazy
from venvkeeper.gateways.shell import run_shell, tail
from venvkeeper.generations import build, delta, engine, wheelcache
from venvkeeper.generations import clone as cloning
from venvkeeper.generations.hooks import hook_environment
from venvkeeper.generations.layout import Layout
from venvkeeper.update import live
from venvkeeper.update.preflight import Preflight
from venvkeeper.update.relock import Relocked
from venvkeeper.update.result import TestOutcome
from venvkeeper.update.session import Session, Stop, refused

# The next generation's machinery (the transaction, the seal, packaging's markers) loads only once the
# re-lock has found an update: a night with no updates does not pay for it.
if TYPE_CHECKING:
    from venvkeeper.update import nextgen
    from venvkeeper.update.nextgen import Prepared
else:
    nextgen = lazy("venvkeeper.update.nextgen")

__all__ = ["Baseline", "Candidate", "build_baseline", "judge_candidate"]

_TAIL_LINES = 60
_LOCKS = {"baseline": "current", "candidate": "updated"}  # the step shown on a terminal


@dataclass(frozen=True)
class Baseline:
    """The environment the tests run in on the current lock: the live generation and the test groups."""

    env: Path
    source: int | None  # the live generation it is a hard-link clone of (None: built from nothing)
    # The source's ctimes right after the clone's own links: the next generation's clone of the same
    # source need not hash those files again (delta.start's ``linked``).
    link_ctimes: Mapping[str, int]


@dataclass(frozen=True)
class Candidate:
    """The re-locked lock, which the tests passed with, as they did with the current one, and the
    generation they passed on (``tested_in``: the clone of it they ran in)."""

    relocked: Relocked
    baseline: TestOutcome
    candidate: TestOutcome
    prepared: Prepared
    tested_in: Path
    tested_links: Mapping[str, int]  # the generation's ctimes right after the test environment's links
    baseline_env: Path


def _member_wheels(session: Session, pre: Preflight) -> dict[str, Path]:
    """The members' wheels: from the member wheel cache when one was built from the member's content on
    the live interpreter (an update never changes the members); built afresh otherwise.

    uv would rebuild every member in each new staging copy (it keys a local build by path and
    mtime). A member built here goes into the staging copy, not the cache: update holds --env's lock
    only while it builds the next generation, so a deploy meanwhile may prune the cache.
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


def _all_groups(pre: Preflight) -> tuple[str, ...]:
    return tuple(sorted({*pre.groups, *pre.test_groups}))


def _from_nothing(session: Session, pre: Preflight, env: Path) -> None:
    """The baseline as before clones: the current lock (test groups too) and the members, into ``env``."""
    build.install_locked(
        pre.stage,
        env,
        pre.python,
        _all_groups(pre),
        lambda: _member_wheels(session, pre),
        reinstall_members=True,
    )


def _add_to_clone(session: Session, pre: Preflight, env: Path, cloned: cloning.Clone) -> None:
    """The test groups (and whatever the clone refused, and the members whose content moved since the live
    generation was built) installed into the clone of the live generation."""
    members = set(pre.facts.member_hashes)
    before = {m.get("name"): m.get("sha256") for m in pre.live.members}
    moved = {n for n, h in pre.facts.member_hashes.items() if before.get(n) != h} | (
        cloned.reinstall & members
    )
    third = sorted(cloned.reinstall - members)
    with build.installing(env, "installing the test groups"):
        engine.sync_dependencies(pre.stage, env, pre.python, _all_groups(pre), third, inexact=True)
    if moved:
        wheels = _member_wheels(session, pre)
        engine.install_wheels(pre.stage, env, [wheels[n] for n in sorted(moved)], reinstall=True)


def build_baseline(session: Session, pre: Preflight) -> Baseline:
    """The baseline's environment: a clone of the live generation with the test groups (run beside the
    re-lock); built from nothing when the live generation cannot be cloned (a schema-1 manifest)."""
    started = time.monotonic()
    layout = Layout.for_env(session.env)
    number = layout.current_number()
    try:
        if number is not None:
            env = session.store.test_env(number)
            fsutil.remove_tree(env)
            try:
                cloned = delta.start(layout, number, env)
            except cloning.CloneRefusedError:
                pass
            else:
                _add_to_clone(session, pre, env, cloned)
                return Baseline(env, number, cloned.link_ctimes)
        env = session.candidate
        _from_nothing(session, pre, env)
        return Baseline(env, None, {})
    finally:
        session.timed("candidate", started)


def _run_tests(session: Session, pre: Preflight, what: str, where: Path) -> TestOutcome:
    env = hook_environment(where, None)
    env.pop("VENVKEEPER_ENV", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the tests run in the source tree: leave no bytecode there
    env["VENVKEEPER_UPDATE"] = what
    log = session.store.log_path(session.stamp, what)
    started = time.monotonic()
    with progress.step(f"tests on the {_LOCKS.get(what, what)} lock: {pre.test_command}") as step:
        done = run_shell(
            pre.test_command,
            cwd=session.root,
            env=env,
            timeout=pre.test_timeout,
            log=log,
            kill_leftovers=True,
        )
        if not done.ok:
            step.failed(
                f"{step.label} ({'timed out' if done.exit_code is None else f'exited {done.exit_code}'})"
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


def _judge_baseline(session: Session, pre: Preflight, built: Future[Baseline]) -> TestOutcome:
    """The tests pass on the current lock, in the baseline's environment; else nothing can be judged."""
    error = built.exception()
    if error is not None:
        reason = error.message if isinstance(error, VenvkeeperError) else str(error)
        raise refused(
            "baseline-failed",
            f"the current lock cannot be installed for its tests: {reason}",
            error.hint if isinstance(error, VenvkeeperError) else "",
        )
    session.result.baseline = outcome = _run_tests(session, pre, "baseline", built.result().env)
    if not outcome.ok:
        how = "timed out" if outcome.timed_out else f"exited {outcome.exit_code}"
        raise refused(
            "baseline-failed",
            f"the tests fail on the current lock (`{pre.test_command}` {how}), "
            "so the update found cannot be judged; nothing was changed",
            f"fix the tests first; the output is in {outcome.log}",
        )
    return outcome


def _not_installable(exc: VenvkeeperError) -> Stop:
    return Stop(
        "candidate-failed",
        f"the updated lock cannot be installed: {exc.message}; the update was NOT applied",
        hint=exc.hint,
    )


def _test_env(session: Session, pre: Preflight, prepared: Prepared) -> tuple[Path, Mapping[str, int]]:
    """A hard-link clone of the prepared generation, with the test groups added: every file the
    generation has is the very inode the tests import (the scripts and RECORDs naming its directory
    aside, rewritten for this one)."""
    started = time.monotonic()
    env = session.store.test_env(prepared.number)
    fsutil.remove_tree(env)
    try:
        cloned = cloning.clone(prepared.directory, prepared.finished.manifest, env)
        if cloned.refused:
            path, why = next(iter(sorted(cloned.refused.items())))
            raise Stop(
                "candidate-failed",
                f"generation {prepared.number}, built for the update, changed before its tests ran "
                f"({path}: {why}); the update was NOT applied",
                hint="something writes into venvkeeper's generations; run the update again",
            )
        if pre.test_groups:
            with build.installing(env, "installing the test groups"):
                engine.sync_dependencies(pre.relock_stage, env, pre.python, _all_groups(pre), inexact=True)
    except cloning.CloneRefusedError as exc:
        raise Stop("candidate-failed", f"the updated generation cannot be tested: {exc}") from None
    except VenvkeeperError as exc:
        raise _not_installable(exc) from None
    finally:
        session.timed("candidate", started)
    return env, cloned.link_ctimes


def _prepare_beside_baseline(
    session: Session, pre: Preflight, relocked: Relocked, built: Future[Baseline]
) -> tuple[TestOutcome, Prepared]:
    """The baseline's tests, while the next generation is built from the re-locked lock (the baseline's
    environment is ready by now: it was built beside the re-lock)."""
    ready = built.result() if built.exception() is None else None
    linked = (ready.source, ready.link_ctimes) if ready is not None and ready.source is not None else None
    with ThreadPoolExecutor(max_workers=1) as pool:
        preparing = pool.submit(
            progress.traced("building the next generation", nextgen.prepare), session, pre, linked
        )
        try:
            baseline = _judge_baseline(session, pre, built)
        except BaseException:
            if preparing.exception() is None:
                nextgen.discard(session, preparing.result())
            raise
    try:
        return baseline, preparing.result()
    except VenvkeeperError as exc:
        raise _not_installable(exc) from None


def judge_candidate(
    session: Session, pre: Preflight, relocked: Relocked, built: Future[Baseline]
) -> Candidate:
    """Build the next generation, test it; a failure leaves everything unchanged."""
    baseline, prepared = _prepare_beside_baseline(session, pre, relocked, built)
    try:
        tested_in, links = _test_env(session, pre, prepared)
        session.result.candidate = outcome = _run_tests(session, pre, "candidate", tested_in)
    except BaseException:
        nextgen.discard(session, prepared)
        raise
    if outcome.ok:
        return Candidate(relocked, baseline, outcome, prepared, tested_in, links, built.result().env)
    nextgen.discard(session, prepared)
    fsutil.remove_tree(tested_in)
    session.result.live_verified = live.unchanged(session.env)
    how = "timed out" if outcome.timed_out else f"exited {outcome.exit_code}"
    raise Stop(
        "tests-failed",
        f"the tests fail with the update (`{pre.test_command}` {how}); the update was NOT applied, "
        "uv.lock and the live environment are unchanged",
        hint=f"the output is in {outcome.log}; pin the package that breaks them in "
        "[tool.venvkeeper.update.packages]",
    )
