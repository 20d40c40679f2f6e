"""update's second step: re-lock under the policy, in the staging copy, and say what moved.

A package uv moved past its rule (its resolver may downgrade one to make room for another's upgrade:
posting's pytest-textual-snapshot 1.1.0 -> 1.0.0 under `uv lock --upgrade`) is held at its locked
version, with its dependencies that moved, and uv resolves once more from the old lock; only what still
breaks a rule then fails the run.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from typing import Any

from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.gateways.uvfailure import NO_SOLUTION
from venvkeeper.generations import engine
from venvkeeper.update import plan as updateplan
from venvkeeper.update import screen
from venvkeeper.update.preflight import Preflight
from venvkeeper.update.session import Session, Stop

__all__ = ["RELOCK_ATTEMPTS", "Relocked", "relock"]

# Re-locks per run: the first, then one for each round of packages held back after breaking a rule.
RELOCK_ATTEMPTS = 3


# How engine.relock begins its error; uv's own words follow.
_UV_SAID = "uv could not re-lock: "


class _NoSolutionError(Exception):
    """uv found no solution: the run's end (``stop``) unless an advisory cap caused it."""

    def __init__(self, error: VenvkeeperError, stop: Stop) -> None:
        super().__init__(error.message)
        self.error, self.stop = error, stop


@dataclass(frozen=True)
class Relocked:
    old_lock: bytes  # uv.lock as checked out
    new_lock: bytes  # as uv re-locked it in the staging copy (the same bytes when nothing moved)
    changes: tuple[updateplan.Change, ...]


def relock(session: Session, pre: Preflight) -> Relocked:
    """Re-lock; the changes, the packages held and the lock's diff go into the report.

    With an advisory source (``pre.screening``), a re-lock that installs a version with a known
    advisory is done again with that version held back (:mod:`.screen`); when that cap leaves uv no
    solution, the packages whose new versions need the vulnerable one are held too, and the re-lock
    runs again (or the run ends saying the caps left no solution, in uv's words)."""
    result = session.result
    old_lock = pre.workspace.lock_bytes
    versions = updateplan.locked_versions(pre.lock, registry_only=True)
    adjust = screen.start(pre.screening, versions, pre.config, result.policy)
    for attempt in range(screen.SECURITY_ROUNDS + 1):
        try:
            new_lock, new, changes, held = _resolve(session, pre, versions, adjust, first=attempt == 0)
        except _NoSolutionError as failed:
            # A cap below a vulnerable version may be what leaves uv no way: another package's new
            # version needs that version. Hold that package too and resolve again, or say so.
            said = failed.error.message.removeprefix(_UV_SAID)
            if not screen.in_the_way(adjust, said, failed.error.detail):
                raise failed.stop from None  # not the caps: uv's own failure, with its own hint
            if attempt == screen.SECURITY_ROUNDS or not screen.unblock(adjust, said, failed.error.detail):
                raise screen.blocked(session, adjust, failed.error) from None
            continue
        last = attempt >= screen.SECURITY_ROUNDS - 1
        if pre.screening is None:
            break
        if not screen.judge(pre.screening, versions, new, changes, adjust, last=last):
            break
        if attempt == screen.SECURITY_ROUNDS:
            raise Stop(
                "relock-failed",
                f"the re-lock installs versions with known advisories even with "
                f"{', '.join(sorted(adjust.hold))} held at the locked version; uv.lock was not changed",
                hint="pin or exclude the package in [tool.venvkeeper.update.packages]",
            )
    screen.summarize(session, pre.screening, versions, new, adjust)
    result.held = sorted(held)
    result.changes = changes
    result.lock_diff = updateplan.lock_diff(old_lock, new_lock) if changes else ""
    return Relocked(old_lock, new_lock, tuple(changes))


def _resolve(
    session: Session,
    pre: Preflight,
    versions: dict[str, tuple[str, ...]],
    adjust: screen.Adjust,
    *,
    first: bool,
) -> tuple[bytes, dict[str, Any], list[updateplan.Change], list[str]]:
    """One resolution within the rules: a package uv moved past its rule is held and uv asked again."""
    old_lock = pre.workspace.lock_bytes
    held: list[str] = []
    for attempt in range(RELOCK_ATTEMPTS):
        hold = [*held, *sorted(adjust.hold)]
        rules = pre.config.packages
        plan = adjust.apply(updateplan.plan_upgrade(versions, session.result.policy, rules, hold))
        if attempt or not first:
            (pre.relock_stage / "uv.lock").write_bytes(old_lock)  # the preferences uv starts from
        new_lock, new, changes = _relock_once(session, pre, plan)
        broken = updateplan.violations(changes, plan.rules)
        if not broken:
            return new_lock, new, changes, held
        more = [name for name in updateplan.to_hold(pre.lock, changes, plan.rules) if name not in hold]
        if not more or attempt + 1 == RELOCK_ATTEMPTS:
            raise Stop(
                "relock-failed",
                f"uv's resolution breaks the update rules: {broken[0]}"
                + (f" (and {len(broken) - 1} more)" if len(broken) > 1 else "")
                + (f", even with {', '.join(held)} held at the locked version" if held else "")
                + "; uv.lock was not changed",
                hint="allow it in [tool.venvkeeper.update.packages] (a wider policy), or pin the package "
                "that needs it",
            )
        held.extend(more)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _relock_once(
    session: Session, pre: Preflight, plan: updateplan.UpgradePlan
) -> tuple[bytes, dict[str, Any], list[updateplan.Change]]:
    started = time.monotonic()
    try:
        engine.relock(pre.relock_stage, plan.requests, pre.python)
    except VenvkeeperError as exc:
        stop = Stop("relock-failed", f"{exc.message}; uv.lock was not changed", hint=exc.hint)
        if exc.cause == NO_SOLUTION:
            raise _NoSolutionError(exc, stop) from None
        raise stop from None
    finally:
        session.timed("relock", started)
    new_lock = (pre.relock_stage / "uv.lock").read_bytes()
    try:
        new = tomllib.loads(new_lock.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise Stop("relock-failed", f"uv wrote a lock that cannot be read: {exc}") from None
    direct = updateplan.direct_names(pre.lock) | updateplan.direct_names(new)
    changes = updateplan.changes_between(
        updateplan.locked_versions(pre.lock), updateplan.locked_versions(new), direct
    )
    return new_lock, new, changes
