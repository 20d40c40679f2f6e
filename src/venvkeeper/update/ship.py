"""update's fourth step: write the tested lock, commit it, push it and make it live, each with its undo.

What goes live is the generation the tests passed on (:mod:`venvkeeper.update.nextgen`), switched to
once the lock is committed. A rejected push un-commits; a failed switch or deploy (which switches itself
back) is reverted by a new commit, so git names what is live. When the tested generation can no longer
go live, the deploy the command line passes in (:class:`Deploy`) builds the committed lock instead.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from venvkeeper.core.errors import ToolError, VenvkeeperError
from venvkeeper.core.lazy import lazy
from venvkeeper.gateways import git as gitcmd
from venvkeeper.generations import engine
from venvkeeper.generations.results import DeployResult
from venvkeeper.update import live, security
from venvkeeper.update import plan as updateplan
from venvkeeper.update.candidate import Candidate
from venvkeeper.update.journal import journal, read_or_none, recover, restore, write_like
from venvkeeper.update.preflight import Preflight
from venvkeeper.update.session import Session, Stop, count

# The next generation's machinery (the transaction, the seal, packaging's markers) loads only once the
# re-lock has found an update: a night with no updates does not pay for it.
if TYPE_CHECKING:
    from venvkeeper.update import nextgen
else:
    nextgen = lazy("venvkeeper.update.nextgen")

__all__ = ["Deploy", "Shipped", "ship"]


class Deploy(Protocol):
    """Deploy ``project``'s checked-out lock to ``env`` as a new generation (venvkeeper deploy)."""

    def __call__(
        self, project: Path, env: Path, *, groups: tuple[str, ...], python: str | None
    ) -> DeployResult: ...


@dataclass(frozen=True)
class Shipped:
    commit: str
    remote: str | None  # where it was pushed (None: not pushed)
    branch: str
    deployed: DeployResult


def ship(session: Session, pre: Preflight, tested: Candidate, deploy: Deploy) -> Shipped:
    """Ship the lock ``tested`` passed with; a run stopped here leaves the project as it was, or a revert."""
    root, store, relocked = session.root, session.store, tested.relocked
    files = {"uv.lock": relocked.new_lock}
    for export in pre.config.exports:
        files[export.path] = engine.export_file(pre.relock_stage, export.format, pre.groups, pre.python)
    _check_unmoved(session, pre, relocked.old_lock)
    originals = {name: read_or_none(root / name) for name in files}
    originals["uv.lock"] = relocked.old_lock
    # Written before the project is touched: a run killed from here on is finished or undone by the
    # next one (journal.recover). Python's finally does not run on SIGTERM or SIGKILL; this does.
    marker = journal(pre.head, originals, files)
    store.write_pending(marker)
    try:
        shipped = _commit_push_deploy(session, pre, files, originals, marker, deploy, tested)
    except Stop:
        store.clear_pending()  # a planned outcome: already undone (or reverted)
        raise
    except BaseException:
        # Anything else (an OS error, SIGTERM): undo now, from the journal, as the next run would.
        with contextlib.suppress(Exception):
            recover(session, "this run")
        raise
    store.clear_pending()
    return shipped


def _check_unmoved(session: Session, pre: Preflight, old_lock: bytes) -> None:
    """Nothing moved in the repository while the tests ran (they may take half an hour)."""
    root = session.root
    moved = None
    if gitcmd.current_branch(root) != pre.branch or gitcmd.head(root) != pre.head:
        moved = f"HEAD moved from {pre.head[:12]} to {gitcmd.head(root)[:12]}"
    elif any(what != "untracked" for what, _ in gitcmd.status(root)):
        moved = "the work tree has uncommitted changes"
    elif read_or_none(root / "uv.lock") != old_lock:
        moved = "uv.lock changed"
    if moved:
        raise Stop(
            "error",
            f"{root}: {moved} during the run, so the tested lock no longer applies; "
            "the update was NOT applied, nothing was written and the live environment is untouched",
            hint="run the update again",
        )


def _commit_push_deploy(
    session: Session,
    pre: Preflight,
    files: dict[str, bytes],
    originals: dict[str, bytes | None],
    marker: dict[str, Any],
    deploy: Deploy,
    tested: Candidate,
) -> Shipped:
    commit = _commit(session, files, originals, pre.head, marker)
    pushed = False if pre.remote is None else _push(session, pre, pre.remote, commit, originals)
    # From here the commit stands (pushed, or about to be live): a kill is reported, not undone.
    session.store.write_pending({**marker, "commit": commit, "pushed": pushed, "deploying": True})
    deployed = _deploy(session, pre, commit, deploy, tested)
    shipped = Shipped(commit, pre.remote if pushed else None, pre.branch, deployed)
    # Reported before the journal is cleared: from the switch on, what is live is the new generation,
    # whatever happens to this run next (a SIGTERM, a failed write).
    _report(session, shipped)
    return shipped


def _report(session: Session, shipped: Shipped) -> None:
    result, done = session.result, shipped.deployed
    result.live_changed = done.changed
    result.generation, result.previous = done.generation, done.previous
    where = (
        f"deployed generation {done.generation}" if done.changed else "the live environment needed no change"
    )
    pushed = (
        f" and pushed to {shipped.remote} {shipped.branch}" if shipped.remote is not None else " (not pushed)"
    )
    result.outcome = "updated"
    result.reason = f"{count(result.changes)} updated, tests passed, committed{pushed}; {where}"


def _commit(
    session: Session,
    files: dict[str, bytes],
    originals: dict[str, bytes | None],
    parent: str,
    marker: dict[str, Any],
) -> str:
    root, result = session.root, session.result
    started = time.monotonic()
    for name, content in files.items():
        write_like(root / name, content)
    try:
        commit = gitcmd.commit_paths(
            root,
            sorted(files),
            updateplan.commit_message(result.changes, result.policy, security.commit_notes(result.security)),
        )
    except VenvkeeperError as exc:
        restore(session, originals, parent, None)
        raise Stop("commit-failed", f"{exc.message}; uv.lock restored", hint=exc.hint) from None
    result.committed, result.lock_changed = commit, True
    session.store.write_pending({**marker, "commit": commit})
    session.timed("commit", started)
    return commit


def _push(
    session: Session, pre: Preflight, remote: str, commit: str, originals: dict[str, bytes | None]
) -> bool:
    root, branch = session.root, pre.branch
    started = time.monotonic()
    try:
        why = gitcmd.push(root, remote, branch)
    except ToolError as exc:  # a push that timed out may still have landed
        why = exc.message
    if why is not None and gitcmd.remote_head(root, remote, branch) == commit:
        why = None  # git failed after the remote took the commit (a dropped connection)
    session.timed("push", started)
    if why is not None:
        restore(session, originals, pre.head, commit)
        raise Stop(
            "push-rejected",
            f"git push to {remote} {branch} was rejected ({why}); the commit was undone, "
            "uv.lock restored, and the live environment was not touched",
            hint=(
                f"pull the remote's changes into {root}, then run the update again"
                if "fetch first" in why or "non-fast-forward" in why
                else "the remote refused the push; see its message, or run with --no-push"
            ),
        )
    session.result.pushed = True
    return True


def _deploy(session: Session, pre: Preflight, commit: str, deploy: Deploy, tested: Candidate) -> DeployResult:
    """Switch to the generation the tests passed on (:func:`nextgen.switch`); only when it can no
    longer go live (a deploy meanwhile, a member whose version comes from git) is it built again."""
    started = time.monotonic()
    try:
        switched = nextgen.switch(session, pre, tested.prepared, tested.tested_in)
        if switched is not None:
            session.timed("deploy", started)
            return switched
        # The interpreter the live environment was asked for, so the deploy builds on the one the
        # candidate was tested on.
        done = deploy(
            session.root, session.env, groups=pre.groups, python=pre.live.interpreter.get("request")
        )
    except VenvkeeperError as exc:
        session.timed("deploy", started)
        raise _revert(session, pre, commit, exc) from None
    session.timed("deploy", started)
    return done


def _revert(session: Session, pre: Preflight, commit: str, exc: VenvkeeperError) -> Stop:
    """The deploy failed after the commit: publish a revert, so git names what is live."""
    root, result = session.root, session.result
    result.live_verified = live.unchanged(session.env)
    try:
        result.reverted = reverted = gitcmd.revert(root, commit)
    except ToolError as failed:
        return Stop(
            "deploy-failed",
            f"deploy failed: {exc.message}; the live environment stays as it was, but the tested "
            f"lock is still committed as {commit[:12]}: {failed.message}",
            hint=failed.hint,
        )
    why = gitcmd.push(root, pre.remote or "origin", pre.branch) if result.pushed else None
    if why is not None:
        return Stop(
            "deploy-failed",
            f"deploy failed: {exc.message}; the live environment stays as it was and commit "
            f"{commit[:12]} was reverted locally by {reverted[:12]}, but that revert "
            f"could not be pushed ({why})",
            hint=f"push it by hand: git -C {root} push",
        )
    return Stop(
        "deploy-failed",
        f"deploy failed: {exc.message}; the live environment stays as it was and commit {commit[:12]} "
        f"was reverted by {reverted[:12]}",
        hint=exc.hint,
    )
