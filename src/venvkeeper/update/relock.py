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

from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.generations import engine
from venvkeeper.update import plan as updateplan
from venvkeeper.update.preflight import Preflight
from venvkeeper.update.session import Session, Stop

__all__ = ["RELOCK_ATTEMPTS", "Relocked", "relock"]

# Re-locks per run: the first, then one for each round of packages held back after breaking a rule.
RELOCK_ATTEMPTS = 3


@dataclass(frozen=True)
class Relocked:
    old_lock: bytes  # uv.lock as checked out
    new_lock: bytes  # as uv re-locked it in the staging copy (the same bytes when nothing moved)
    changes: tuple[updateplan.Change, ...]


def relock(session: Session, pre: Preflight) -> Relocked:
    """Re-lock; the changes, the packages held and the lock's diff go into the report."""
    result = session.result
    old_lock = pre.workspace.lock_bytes
    versions = updateplan.locked_versions(pre.lock, registry_only=True)
    held: list[str] = []
    for attempt in range(RELOCK_ATTEMPTS):
        plan = updateplan.plan_upgrade(versions, result.policy, pre.config.packages, hold=held)
        if attempt:
            (pre.relock_stage / "uv.lock").write_bytes(old_lock)  # the preferences uv starts from
        new_lock, changes = _relock_once(session, pre, plan)
        broken = updateplan.violations(changes, plan.rules)
        if not broken:
            break
        more = [name for name in updateplan.to_hold(pre.lock, changes, plan.rules) if name not in held]
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
    result.held = sorted(held)
    result.changes = changes
    result.lock_diff = updateplan.lock_diff(old_lock, new_lock) if changes else ""
    return Relocked(old_lock, new_lock, tuple(changes))


def _relock_once(
    session: Session, pre: Preflight, plan: updateplan.UpgradePlan
) -> tuple[bytes, list[updateplan.Change]]:
    started = time.monotonic()
    try:
        engine.relock(pre.relock_stage, plan.requests, pre.python)
    except VenvkeeperError as exc:
        raise Stop("relock-failed", f"{exc.message}; uv.lock was not changed", hint=exc.hint) from None
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
    return new_lock, changes
