"""``venvkeeper update``: take the updates a policy allows, test them off-line, then ship them.

The order is the point (docs/update.md): :mod:`.preflight` → :mod:`.relock` → :mod:`.candidate` →
:mod:`.ship` → :mod:`.notify`, each step taking the record the one before returned. Nothing the live
service uses changes before the tests pass: they run in a candidate environment beside the live one, and
the new lock is resolved in a staging copy, so the source tree gets it only when it is committed. This
module runs the steps in that order, under the project's lock, and turns however they end into the
report's outcome. The pure decisions are in :mod:`.plan`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from venvkeeper.core import files as fsutil
from venvkeeper.core import progress
from venvkeeper.core.errors import ConfigError, VenvkeeperError
from venvkeeper.core.lazy import lazy
from venvkeeper.gateways import git as gitcmd
from venvkeeper.gateways.uv import cache_scope
from venvkeeper.generations.layout import Layout, refuse_inside
from venvkeeper.update import candidate, notify
from venvkeeper.update.journal import recover
from venvkeeper.update.preflight import preflight
from venvkeeper.update.relock import relock
from venvkeeper.update.result import UpdateResult
from venvkeeper.update.session import Session, Stop, UpdateRequest, count, read_config, refused
from venvkeeper.update.ship import Deploy, ship
from venvkeeper.update.store import UpdateStore, utc_stamp

# The next generation's machinery (the transaction, the seal, packaging's markers) loads only once the
# re-lock has found an update: a night with no updates does not pay for it.
if TYPE_CHECKING:
    from venvkeeper.update import nextgen
else:
    nextgen = lazy("venvkeeper.update.nextgen")

__all__ = ["update"]


@contextlib.contextmanager
def _project_lock(root: Path, store: UpdateStore) -> Iterator[None]:
    """One update per project: an flock on the project directory itself, so no file is written there."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Stop(
                "busy",
                f"another update of {root} is running: {store.holder()}",
                hint="nothing was done; the running update goes on (cron runs may overlap safely)",
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _open(
    request: UpdateRequest, result: UpdateResult, store: UpdateStore, stamp: str, given_root: Path
) -> Session:
    """The session, once the project is locked, with its update table read leniently: the mail's
    recipients are known whatever stops the run. Whether the state directory is ours comes next."""
    root = Path(result.project)
    config, error = None, None
    try:
        config = read_config(root)
    except ConfigError as exc:
        error = exc
    return Session(
        request, result, store, root, given_root, Path(result.env), stamp, config, error, ours=False
    )


def _is_ours(session: Session) -> bool:
    """The environment was deployed from this project (not another's, by a mistyped --env)."""
    layout = Layout.for_env(session.env)
    number = layout.current_number() if layout.env_kind() == "generation" else None
    state = layout.read_state(number) if number is not None else None
    return state is not None and state.project == str(session.root)


def _steps(session: Session, deploy: Deploy, started: float) -> None:
    request, result, store = session.request, session.result, session.store
    if session.ours:
        store.prepare()
        store.sweep()
        store.mark_running("venvkeeper update")
        if gitcmd.is_work_tree(session.root):
            recover(session, "a previous run")  # before the checks: they judge what it leaves
    pre = progress.call("preflight checks", preflight, session)
    session.timed("preflight", started)
    # The re-lock (network) and the baseline candidate (the current lock, from uv's cache) run side by
    # side. The baseline's tests wait for the re-lock: with nothing to update there is nothing to judge,
    # and a nightly run with no updates ends here, in the time of a re-lock.
    with ThreadPoolExecutor(max_workers=1) as pool:
        baseline = None
        if not request.dry_run:
            building = progress.traced(
                "building the test environment of the current lock", candidate.build_baseline
            )
            baseline = pool.submit(building, session, pre)
        try:
            relocked = progress.call(f"re-locking within the {result.policy} policy", relock, session, pre)
        finally:
            if baseline is not None:
                baseline.exception()  # wait: the candidate directory is removed after the run
    if not relocked.changes:
        result.outcome, result.reason = "no-updates", f"no updates within the {result.policy} policy"
        if result.security is not None and result.security.held_back:
            held = ", ".join(sorted(e["name"] for e in result.security.held_back))
            result.reason += f" ({held} held back: known advisories)"
        return
    if baseline is None:  # a dry run
        result.outcome = "would-update"
        result.reason = f"{count(result.changes)} would be updated ({result.policy}); nothing was written"
        return
    result.backup = str(store.backup_lock(relocked.old_lock, session.stamp, pre.config.keep_backups))
    tested = candidate.judge_candidate(session, pre, relocked, baseline)
    try:
        # It reports what it shipped into the run's result.
        progress.call("shipping: commit, push, switch", ship, session, pre, tested, deploy)
    finally:
        nextgen.discard(session, tested.prepared)  # unless it went live (then it is recorded)
    envs = (tested.tested_in, tested.baseline_env)
    nextgen.remove_test_envs(session, tested.prepared, envs, tested.tested_links)


def _is_a_directory(root: Path) -> None:
    if not root.is_dir():
        raise refused("not-a-git-repo", f"{root}: not a directory", "give the project's directory")


def _attempt(
    request: UpdateRequest,
    result: UpdateResult,
    store: UpdateStore,
    stamp: str,
    given_root: Path,
    deploy: Deploy,
) -> Session | None:
    """Run the steps under the project's lock; the session they ran in (None: none was opened)."""
    root, session = Path(result.project), None
    try:
        _is_a_directory(root)
        # uv's cache: its default, else (no usable home) the environment's own, as deploy chooses.
        with (
            _project_lock(root, store),
            cache_scope(Layout.for_env(Path(result.env)).home / "uv-cache", project=root),
        ):
            started = time.monotonic()
            try:
                session = _open(request, result, store, stamp, given_root)
                session = replace(session, ours=_is_ours(session))
                _steps(session, deploy, started)
            finally:
                for leftover in (store.stage(), store.stage("-new"), store.candidate(), *store.test_envs()):
                    fsutil.remove_tree(leftover)
                if session is not None and session.ours:  # another project's run marker is not ours
                    store.clear_running()
    except Stop as stop:
        result.outcome, result.reason, result.check, result.hint = (
            stop.outcome,
            stop.reason,
            stop.check,
            stop.hint,
        )
    except VenvkeeperError as exc:
        result.outcome, result.reason, result.hint = "error", exc.message, exc.hint
    except (KeyboardInterrupt, _Terminated) as exc:
        what = "terminated (SIGTERM)" if isinstance(exc, _Terminated) else "interrupted"
        result.outcome, result.reason = "error", f"{what}; {_left(result)}"
    except Exception as exc:  # an OS error must still be recorded and mailed
        result.outcome, result.reason = "error", f"{type(exc).__name__}: {exc}; {_left(result)}"
        result.hint = "see the reason; `git status` in the project shows what is left"
    return session


def update(request: UpdateRequest, deploy: Deploy) -> UpdateResult:
    """Run one update; ``deploy`` ships the tested lock (the command line passes venvkeeper deploy's)."""
    started = time.monotonic()
    root = Path(os.path.abspath(request.project_dir))
    with contextlib.suppress(OSError):
        root = root.resolve()
    env = Path(os.path.abspath(request.env))
    refuse_inside(env, root)  # the store, the candidate and the deploy would all write into the source
    host = os.environ.get("VENVKEEPER_HOSTNAME") or socket.gethostname()
    result = UpdateResult(
        project=str(root), env=str(env), host=host, policy=request.policy or "patch", dry_run=request.dry_run
    )
    # The env-file is found beside the project as the operator named it (/srv/app/current/..), not
    # beside the release directory a symlink resolves to.
    given_root = Path(os.path.abspath(request.project_dir))
    store = UpdateStore.for_env(env)
    stamp = utc_stamp()
    # systemd and cron stop a run with SIGTERM, whose default action skips every finally: turned into
    # an exception, it lets the run undo what it wrote, record itself and mail the admins.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            session = _attempt(request, result, store, stamp, given_root, deploy)
        finally:
            result.durations["total"] = time.monotonic() - started
        config = None if session is None else session.config
        ours = session is not None and session.ours
        progress.call(
            "recording the run and mailing the report",
            notify.finish,
            result,
            store,
            given_root,
            config,
            ours=ours,
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    result.durations["total"] = time.monotonic() - started
    return result


class _Terminated(BaseException):
    """SIGTERM, raised where the run is, so that its cleanup runs."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def _left(result: UpdateResult) -> str:
    if result.recovered:
        return result.recovered
    if result.committed:
        return f"commit {result.committed[:12]} stands; the live environment is as the report says"
    return "uv.lock and the live environment were not changed"
