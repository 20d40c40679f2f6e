"""``venvkeeper update``: take the updates a policy allows, test them off-line, then ship them.

The order is the point (docs/update.md). Nothing the live service uses changes before the tests
pass. The tests run in a candidate environment beside the live one. The new lock is resolved in a
staging copy, so the source tree gets it only when it is committed. Every step after the commit has
an undo: a rejected push un-commits, a failed deploy (which switches itself back) is reverted.
The pure decisions are in :mod:`updateplan`. This module carries them out, and only through the
gateways: :mod:`engine` (uv), :mod:`gitcmd` (git), :mod:`mail` (SMTP) and :mod:`deploy`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.core.errors import ConfigError, LockError, ToolError, VenvkeeperError
from venvkeeper.gateways import git as gitcmd
from venvkeeper.generations import engine
from venvkeeper.generations.layout import GenerationState, Layout, now_iso, refuse_inside
from venvkeeper.project import staging
from venvkeeper.project.workspace import (
    Workspace,
    load_lock_members,
    load_workspace,
    parse_lock,
    stale_member,
)
from venvkeeper.update import plan as updateplan
from venvkeeper.update.config import UpdateConfig, parse_update_config
from venvkeeper.update.result import TestOutcome, UpdateResult
from venvkeeper.update.store import UpdateStore, utc_stamp

__all__ = ["UpdateRequest", "update"]

_TAIL_LINES = 60
# Re-locks per run: the first, then one for each round of packages held back after breaking a rule.
_RELOCK_ATTEMPTS = 3


@dataclass(frozen=True)
class UpdateRequest:
    project_dir: Path
    env: Path
    policy: str | None = None  # None: the config's, else patch
    groups: tuple[str, ...] | None = None
    test_command: str | None = None
    test_timeout: float | None = None
    branch: str | None = None
    dry_run: bool = False
    push: bool = True


class _Stop(Exception):  # noqa: N818 - an outcome, not an error
    """Ends a run with an outcome (everything already put back by whoever raises it)."""

    def __init__(self, outcome: str, reason: str, *, check: str | None = None, hint: str = "") -> None:
        super().__init__(reason)
        self.outcome, self.reason, self.check, self.hint = outcome, reason, check, hint


def _preflight(check: str, reason: str, hint: str = "") -> _Stop:
    return _Stop("preflight-failed", reason, check=check, hint=hint)


@contextlib.contextmanager
def _project_lock(root: Path, store: UpdateStore) -> Iterator[None]:
    """One update per project: an flock on the project directory itself, so no file is written there."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _Stop(
                "busy",
                f"another update of {root} is running: {store.holder()}",
                hint="nothing was done; the running update goes on (cron runs may overlap safely)",
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


class _Run:
    """One update run: what it learned so far, and what it must put back."""

    def __init__(self, request: UpdateRequest, result: UpdateResult, store: UpdateStore) -> None:
        self.request = request
        self.result = result
        self.store = store
        self.root = Path(result.project)
        # The env-file is found beside the project as the operator named it (/srv/app/current/..),
        # not beside the release directory a symlink resolves to.
        self.given_root = Path(os.path.abspath(request.project_dir))
        self.env = Path(result.env)
        self.stamp = utc_stamp()
        self.workspace: Workspace | None = None
        self.config: UpdateConfig | None = None
        self.lock: dict[str, Any] = {}
        self.live: GenerationState | None = None
        self.in_place = False
        self.groups: tuple[str, ...] = ()
        self.test_groups: tuple[str, ...] = ()
        self.test_command = ""
        self.test_timeout = 0.0
        self.branch = ""
        self.remote: str | None = None
        # Two staging copies of the tracked files: the current lock (the baseline candidate is built
        # from it) and the re-locked one; uv rewrites uv.lock in place, so they cannot be one.
        self.stage = store.stage()
        self.relocked = store.stage("-new")
        self.candidate = store.candidate()
        self.facts: Any = None  # deploy.ProjectFacts of the checked-out project
        self.member_wheels: list[Path] = []
        self.new_lock = b""
        self.head = ""  # HEAD at preflight: nothing is written unless it is still HEAD
        self.store_ready = False

    # -- helpers -----------------------------------------------------------------------------

    def _timed(self, name: str, started: float) -> None:
        self.result.durations[name] = self.result.durations.get(name, 0.0) + time.monotonic() - started

    @property
    def store_usable(self) -> bool:
        """update keeps state beside an environment venvkeeper made, and nowhere else."""
        return self.store.directory.parent.is_dir()

    # -- the run -----------------------------------------------------------------------------

    def go(self) -> None:
        if not self.root.is_dir():
            raise _preflight(
                "not-a-git-repo", f"{self.root}: not a directory", "give the project's directory"
            )
        from venvkeeper.gateways.uv import cache_scope  # noqa: PLC0415

        # uv's cache: its default, else (no usable home) the environment's own, as deploy chooses.
        with (
            _project_lock(self.root, self.store),
            cache_scope(Layout.for_env(self.env).home / "uv-cache", project=self.root),
        ):
            try:
                self._locked()
            finally:
                for leftover in (self.store.stage(), self.store.stage("-new"), self.candidate):
                    fsutil.remove_tree(leftover)
                if self.store_ready:  # another project's run marker is not ours to remove
                    self.store.clear_running()

    def _locked(self) -> None:
        started = time.monotonic()
        self._config(lenient=True)  # for the mail's recipients, whatever stops the run
        # The state directory is swept, marked and recovered only when it is this project's
        # environment's: another project's (a mistyped --env) is left alone.
        if self._env_is_ours():
            self.store_ready = True
            self.store.prepare()
            self.store.sweep()
            self.store.mark_running("venvkeeper update")
            if gitcmd.is_work_tree(self.root):
                self._recover("a previous run")  # before the checks: they judge what it leaves
        self._check_repository()
        self._check_project()
        self._check_environment()
        self._choose_groups()
        self._check_live_current()
        self._check_lock_current()
        self._check_live_clean()
        self._check_permissions()
        self._timed("preflight", started)
        old_bytes = self._lock_bytes()
        # The re-lock (network) and the baseline candidate (the current lock, from uv's cache) run
        # side by side. The baseline's tests wait for the re-lock: with nothing to update there is
        # nothing to judge, and a nightly run with no updates ends here, in the time of a re-lock.
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        with ThreadPoolExecutor(max_workers=1) as pool:
            baseline = None if self.request.dry_run else pool.submit(self._build_baseline)
            try:
                self._relock(old_bytes)
            finally:
                if baseline is not None:
                    baseline.exception()  # wait: the candidate directory is removed after the run
        changes = self.result.changes
        if not changes:
            self.result.outcome = "no-updates"
            self.result.reason = f"no updates within the {self.result.policy} policy"
            return
        if self.request.dry_run:
            self.result.outcome = "would-update"
            self.result.reason = (
                f"{_count(changes)} would be updated ({self.result.policy}); nothing was written"
            )
            return
        self.result.backup = str(self.store.backup_lock(old_bytes, self.stamp, self._config().keep_backups))
        assert baseline is not None  # noqa: S101 - not a dry run
        self._baseline(baseline)
        self._test_candidate()
        self._ship(old_bytes)

    # -- preflight ---------------------------------------------------------------------------

    def _check_repository(self) -> None:
        if not gitcmd.is_work_tree(self.root):
            raise _preflight(
                "not-a-git-repo",
                f"{self.root}: not a git work tree; update commits the lock it tested",
                "deploy from a git checkout of the project",
            )
        try:
            config = self._config()
        except ConfigError as exc:
            raise _preflight("config", exc.message, exc.hint) from None
        branch = gitcmd.current_branch(self.root)
        expected = self.request.branch or config.branch or "main"
        self.branch = expected
        if branch != expected:
            seen = f"on branch {branch}" if branch else "on a detached HEAD"
            raise _preflight(
                "wrong-branch",
                f"{self.root}: {seen}, expected {expected}",
                f"git checkout {expected}, or set [tool.venvkeeper.update] branch (or --branch)",
            )
        dirty = [(what, path) for what, path in gitcmd.status(self.root) if what != "untracked"]
        if dirty:
            shown = ", ".join(f"{path} ({what})" for what, path in dirty[:3])
            more = f" and {len(dirty) - 3} more" if len(dirty) > 3 else ""
            raise _preflight(
                "dirty-tree",
                f"{self.root}: uncommitted changes: {shown}{more}",
                "commit or discard them; update commits only a lock it tested on a clean tree",
            )
        self.head = gitcmd.head(self.root)

    def _config(self, *, lenient: bool = False) -> UpdateConfig:
        """The update table; ``lenient`` (before the full check) gives the defaults on any error.

        Read from pyproject.toml alone, so that even a run stopped by a corrupt lock or a missing
        git repository mails the project's own recipients.
        """
        if self.config is not None:
            return self.config
        path = self.root / "pyproject.toml"
        try:
            pyproject = tomllib.loads(path.read_text())
            self.config = parse_update_config(pyproject, path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            if lenient:
                return UpdateConfig()
            raise ConfigError(f"{path}: cannot be read: {exc}", hint="fix pyproject.toml") from exc
        except ConfigError:
            if lenient:
                return UpdateConfig()
            raise
        return self.config

    def _check_project(self) -> None:
        try:
            self.workspace = load_workspace(self.root)
        except LockError as exc:
            raise _preflight("corrupt-lock", exc.message, exc.hint) from None
        except ConfigError as exc:
            raise _preflight("config", exc.message, exc.hint) from None
        try:
            config = self._config()
            self.lock = parse_lock(self.workspace)
            load_lock_members(self.workspace, self.lock)  # names a member whose pyproject is gone
        except LockError as exc:
            raise _preflight("corrupt-lock", exc.message, exc.hint) from None
        except ConfigError as exc:
            raise _preflight("config", exc.message, exc.hint) from None
        self.result.policy = self.request.policy or config.policy
        self.test_command = self.request.test_command or config.test_command or ""
        self.test_timeout = self.request.test_timeout or config.test_timeout
        if not self.test_command and not self.request.dry_run:
            raise _preflight(
                "no-test-command",
                f"{self.root / 'pyproject.toml'}: no test command; an update is only taken when tests pass",
                "set test-command in [tool.venvkeeper.update], or pass --test-command",
            )
        try:
            from venvkeeper.gateways.uv import find_uv  # noqa: PLC0415

            find_uv()
        except ToolError as exc:
            raise _preflight("uv-missing", exc.message, exc.hint) from None
        if self.request.push and not self.request.dry_run:
            self.remote = config.remote or gitcmd.upstream_remote(self.root) or "origin"
            if not gitcmd.remote_exists(self.root, self.remote):
                raise _preflight(
                    "no-remote",
                    f"{self.root}: no git remote '{self.remote}' to push the tested lock to",
                    "add the remote (git remote add), set [tool.venvkeeper.update] remote, or pass --no-push",
                )

    def _choose_groups(self) -> None:
        """The groups to update: --group, the hosts rule, else those the live environment has."""
        from venvkeeper.project.facts import defined_groups  # noqa: PLC0415

        assert self.workspace is not None and self.live is not None  # noqa: S101
        config = self._config()
        members = load_lock_members(self.workspace, self.lock)
        defined = defined_groups(self.lock, members)
        live_groups = self.live.options.get("groups")
        if isinstance(live_groups, list):
            default, origin = live_groups, "the live environment's groups"
        else:
            default, origin = list(self.workspace.config.groups), "[tool.venvkeeper] groups"
        self.groups, self.result.groups_from = updateplan.groups_for_host(
            self.request.groups, config.hosts, self.result.host, default
        )
        if self.result.groups_from == "[tool.venvkeeper] groups":
            self.result.groups_from = origin
        self.result.groups = list(self.groups)
        wanted_tests = config.test_groups
        if wanted_tests is None:
            wanted_tests = ("dev",) if "dev" in defined else ()
        self.test_groups = tuple(sorted(set(wanted_tests)))
        missing = sorted((set(self.groups) | set(self.test_groups)) - set(defined))
        if missing:
            raise _preflight(
                "missing-groups",
                f"{self.root / 'pyproject.toml'}: dependency group(s) {', '.join(missing)} not defined "
                f"(wanted by {self.result.groups_from} or test-groups; "
                f"defined: {', '.join(defined) or 'none'})",
                "add the group to [dependency-groups] and run `uv lock`, or fix --group / the hosts rule",
            )

    def _env_is_ours(self) -> bool:
        layout = Layout.for_env(self.env)
        number = layout.current_number() if layout.env_kind() == "generation" else None
        state = layout.read_state(number) if number is not None else None
        return state is not None and state.project == str(self.root)

    def _check_environment(self) -> None:
        layout = Layout.for_env(self.env)
        kind = layout.env_kind()
        if kind == "generation":
            number = layout.current_number()
            self.live = layout.read_state(number) if number is not None else None
        elif kind == "venv" and layout.inplace_state.is_file():
            from venvkeeper.generations.layout import read_state_file  # noqa: PLC0415

            self.live, self.in_place = read_state_file(layout.inplace_state), True
        if self.live is None or self.live.kind != "deploy":
            raise _preflight(
                "env-missing",
                f"{self.env}: not an environment venvkeeper deployed",
                f"deploy it first: venvkeeper deploy {self.root} --env {self.env}",
            )
        if self.in_place:
            raise _preflight(
                "env-in-place",
                f"{self.env}: deployed --in-place, which has no atomic switch or rollback, so a failed "
                "update could not leave it as it was",
                f"deploy it as generations: venvkeeper deploy {self.root} --env {self.env} (no --in-place)",
            )
        if self.live.project != str(self.root):
            raise _preflight(
                "env-missing",
                f"{self.env}: deployed from {self.live.project}, not from {self.root}",
                "give the environment this project deploys to",
            )
        self.result.generation = self.result.previous = self.live.number if not self.in_place else None

    def _check_live_current(self) -> None:
        """The live environment runs the checked-out lock: the update is judged against what is live."""
        assert self.live is not None and self.workspace is not None  # noqa: S101
        if self.live.lock_sha256 != hashlib.sha256(self.workspace.lock_bytes).hexdigest():
            raise _preflight(
                "env-not-current",
                f"{self.env}: deployed from another uv.lock than the one checked out in {self.root}",
                f"deploy the checked-out lock first: venvkeeper deploy {self.root} --env {self.env}",
            )

    def _check_lock_current(self) -> None:
        from venvkeeper.project import plan  # noqa: PLC0415
        from venvkeeper.project.facts import ProjectFacts  # noqa: PLC0415

        assert self.workspace is not None and self.live is not None  # noqa: S101 - set before
        members = load_lock_members(self.workspace, self.lock)
        lock_sha = hashlib.sha256(self.workspace.lock_bytes).hexdigest()
        options = plan.Options(self.groups, None, self.in_place)
        self.facts = facts = ProjectFacts(self.workspace, members, options, lock_sha)
        tops = (self.store.stage(), self.store.stage("-new"))
        for top in tops:
            fsutil.remove_tree(top)
            top.mkdir(parents=True)
        self.stage, self.relocked = (
            staging.populate(self.root, facts.files, top, git=facts.in_git, members=members) for top in tops
        )
        if self.live.lock_inputs_sha256 == facts.lock_inputs:
            return  # the same lock and pyproject files uv found current when the live env was deployed
        try:
            engine.check_lock(
                self.stage,
                self.workspace.lock_path,
                stale_member(self.workspace, self.lock, members),
                self._python(),
            )
        except VenvkeeperError as exc:
            # The preflight check is named for the real cause (an unusable cache is not a bad lock).
            check = {"lock-out-of-date": "lock-stale", "": "corrupt-lock", "uv-failed": "corrupt-lock"}.get(
                exc.cause, exc.cause
            )
            raise _preflight(check, exc.message, exc.hint) from None

    def _check_live_clean(self) -> None:
        from venvkeeper.core.errors import CannotVerifyError  # noqa: PLC0415
        from venvkeeper.verify import check as verify  # noqa: PLC0415

        try:
            findings = verify.verify(str(self.env)).findings
        except CannotVerifyError as exc:
            raise _preflight("env-not-clean", exc.message, exc.hint) from None
        if findings:
            first = findings[0]
            what = " ".join(str(p) for p in (first.category, first.distribution, first.path) if p)
            raise _preflight(
                "env-not-clean",
                f"{self.env}: verify found {len(findings)} problem(s), first: {what}",
                f"see `venvkeeper verify --env {self.env}`; repair with `venvkeeper deploy --repair`",
            )

    def _permission_roots(self) -> list[Path]:
        roots = [self.store.directory.parent]
        if self.in_place:
            roots.append(self.env)
        return roots

    def _check_permissions(self) -> None:
        config = self._config()
        if config.group is None:
            return
        from venvkeeper.update import groupperm  # noqa: PLC0415

        problem = groupperm.check(
            self._permission_roots(),
            config.group,
            write=config.group_write,
            skip=(self.store.stage(), self.store.stage("-new"), self.candidate, self.store.running),
        )
        if problem:
            raise _preflight("permissions", problem, groupperm.fix_hint(self._permission_roots(), config))

    # -- tests -------------------------------------------------------------------------------

    def _python(self) -> Path:
        assert self.live is not None  # noqa: S101
        return Path(self.live.interpreter.get("path", ""))

    def _run_tests(self, what: str) -> TestOutcome:
        from venvkeeper.gateways.shell import run_shell, tail  # noqa: PLC0415
        from venvkeeper.generations.hooks import hook_environment  # noqa: PLC0415

        env = hook_environment(self.candidate, None)
        env.pop("VENVKEEPER_ENV", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # the tests run in the source tree: leave no bytecode there
        env["VENVKEEPER_UPDATE"] = what
        log = self.store.log_path(self.stamp, what)
        started = time.monotonic()
        done = run_shell(
            self.test_command, cwd=self.root, env=env, timeout=self.test_timeout, log=log, kill_leftovers=True
        )
        self._timed("tests", started)
        return TestOutcome(
            done.ok,
            done.exit_code,
            done.exit_code is None,
            done.duration_s,
            tail(done.output, _TAIL_LINES),
            str(log),
        )

    def _wheels(self) -> list[Path]:
        """The members' wheels: the live generation's, from deploy's cache, when the member's content
        is the one it was built from (an update never changes the members); built afresh otherwise.

        uv would rebuild every member in each new staging copy (it keys a local build by path and
        mtime), which is most of the candidate's cost.
        """
        assert self.live is not None  # noqa: S101
        recorded = {m.get("name"): m for m in self.live.members}
        in_workspace = "manifest" in self.lock or len(self.facts.members) > 1
        wheels: list[Path] = []
        for member in self.facts.members:
            if not member.package:
                continue
            record = recorded.get(member.name, {})
            wheel = Path(record["wheel"]) if record.get("wheel") else None
            same = record.get("sha256") == self.facts.member_hashes.get(member.name)
            if wheel is not None and same and wheel.is_file():
                wheels.append(wheel)
                continue
            out = self.stage / ".venvkeeper-wheels" / member.name
            out.mkdir(parents=True, exist_ok=True)
            wheels.append(
                engine.build_wheel(
                    self.stage, member.name, member.path, out, self._python(), in_workspace=in_workspace
                )
            )
        return wheels

    def _fill_candidate(self, stage: Path) -> None:
        """Make the candidate exactly ``stage``'s lock (test groups too), then add the members."""
        groups = tuple(sorted({*self.groups, *self.test_groups}))
        engine.sync_dependencies(stage, self.candidate, self._python(), groups)
        if self.member_wheels:
            engine.install_wheels(stage, self.candidate, self.member_wheels, reinstall=True)

    def _build_baseline(self) -> None:
        started = time.monotonic()
        try:
            self.member_wheels = self._wheels()
            self._fill_candidate(self.stage)
        finally:
            self._timed("candidate", started)

    def _baseline(self, built: Future[None]) -> None:
        error = built.exception()
        if error is not None:
            reason = error.message if isinstance(error, VenvkeeperError) else str(error)
            raise _preflight(
                "baseline-failed",
                f"the current lock cannot be installed for its tests: {reason}",
                error.hint if isinstance(error, VenvkeeperError) else "",
            )
        self.result.baseline = outcome = self._run_tests("baseline")
        if not outcome.ok:
            how = "timed out" if outcome.timed_out else f"exited {outcome.exit_code}"
            raise _preflight(
                "baseline-failed",
                f"the tests fail on the current lock (`{self.test_command}` {how}), "
                "so the update found cannot be judged; nothing was changed",
                f"fix the tests first; the output is in {outcome.log}",
            )

    # -- re-lock -----------------------------------------------------------------------------

    def _lock_bytes(self) -> bytes:
        assert self.workspace is not None  # noqa: S101
        return self.workspace.lock_bytes

    def _relock(self, old_bytes: bytes) -> None:
        """Re-lock under the policy. A package uv moved past its rule (its resolver may downgrade one
        to make room for another's upgrade: posting's pytest-textual-snapshot 1.1.0 -> 1.0.0 under
        `uv lock --upgrade`) is held at its locked version, with its dependencies that moved, and uv
        resolves once more from the old lock; only what still breaks a rule then fails the run."""
        config = self._config()
        versions = updateplan.locked_versions(self.lock, registry_only=True)
        held: list[str] = []
        for attempt in range(_RELOCK_ATTEMPTS):
            plan = updateplan.plan_upgrade(versions, self.result.policy, config.packages, hold=held)
            if attempt:
                (self.relocked / "uv.lock").write_bytes(old_bytes)  # the preferences uv starts from
            changes = self._relock_once(plan)
            broken = updateplan.violations(changes, plan.rules)
            if not broken:
                break
            more = [name for name in updateplan.to_hold(self.lock, changes, plan.rules) if name not in held]
            if not more or attempt + 1 == _RELOCK_ATTEMPTS:
                raise _Stop(
                    "relock-failed",
                    f"uv's resolution breaks the update rules: {broken[0]}"
                    + (f" (and {len(broken) - 1} more)" if len(broken) > 1 else "")
                    + (f", even with {', '.join(held)} held at the locked version" if held else "")
                    + "; uv.lock was not changed",
                    hint="allow it in [tool.venvkeeper.update.packages] (a wider policy), or pin the package "
                    "that needs it",
                )
            held.extend(more)
        self.result.held = sorted(held)
        self.result.changes = changes
        self.result.lock_diff = updateplan.lock_diff(old_bytes, self.new_lock) if changes else ""

    def _relock_once(self, plan: updateplan.UpgradePlan) -> list[updateplan.Change]:
        started = time.monotonic()
        try:
            engine.relock(self.relocked, plan.requests, self._python())
        except VenvkeeperError as exc:
            raise _Stop("relock-failed", f"{exc.message}; uv.lock was not changed", hint=exc.hint) from None
        finally:
            self._timed("relock", started)
        self.new_lock = (self.relocked / "uv.lock").read_bytes()
        try:
            new = tomllib.loads(self.new_lock.decode())
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise _Stop("relock-failed", f"uv wrote a lock that cannot be read: {exc}") from None
        direct = updateplan.direct_names(self.lock) | updateplan.direct_names(new)
        return updateplan.changes_between(
            updateplan.locked_versions(self.lock), updateplan.locked_versions(new), direct
        )

    # -- candidate ---------------------------------------------------------------------------

    def _test_candidate(self) -> None:
        started = time.monotonic()
        try:
            self._fill_candidate(self.relocked)
        except VenvkeeperError as exc:
            raise _Stop(
                "candidate-failed",
                f"the updated lock cannot be installed: {exc.message}; the update was NOT applied",
                hint=exc.hint,
            ) from None
        finally:
            self._timed("candidate", started)
        self.result.candidate = outcome = self._run_tests("candidate")
        if outcome.ok:
            return
        fsutil.remove_tree(self.candidate)
        self.result.live_verified = self._live_unchanged()
        how = "timed out" if outcome.timed_out else f"exited {outcome.exit_code}"
        raise _Stop(
            "tests-failed",
            f"the tests fail with the update (`{self.test_command}` {how}); the update was NOT applied, "
            "uv.lock and the live environment are unchanged",
            hint=f"the output is in {outcome.log}; pin the package that breaks them in "
            "[tool.venvkeeper.update.packages]",
        )

    def _live_unchanged(self) -> bool:
        from venvkeeper.verify import check as verify  # noqa: PLC0415

        try:
            return not verify.verify(str(self.env)).findings
        except VenvkeeperError:
            return False

    # -- ship --------------------------------------------------------------------------------

    def _ship(self, old_bytes: bytes) -> None:
        config = self._config()
        files = {"uv.lock": self.new_lock}
        for export in config.exports:
            files[export.path] = engine.export_file(self.relocked, export.format, self.groups, self._python())
        self._check_unmoved(old_bytes)
        originals = {name: _read_or_none(self.root / name) for name in files}
        originals["uv.lock"] = old_bytes
        parent = self.head
        # Written before the project is touched: a run killed from here on is finished or undone by
        # the next one (_recover). Python's finally does not run on SIGTERM or SIGKILL; this does.
        journal: dict[str, Any] = {
            "parent": parent,
            "commit": None,
            "pushed": False,
            "files": {
                name: {
                    "original": None if content is None else base64.b64encode(content).decode(),
                    "written": hashlib.sha256(files[name]).hexdigest(),
                }
                for name, content in originals.items()
            },
        }
        self.store.write_pending(journal)
        try:
            self._commit_push_deploy(files, originals, parent, journal)
        except _Stop:
            self.store.clear_pending()  # a planned outcome: already undone (or reverted)
            raise
        except BaseException:
            # Anything else (an OS error, SIGTERM): undo now, from the journal, as the next run would.
            with contextlib.suppress(Exception):
                self._recover("this run")
            raise
        self.store.clear_pending()

    def _check_unmoved(self, old_bytes: bytes) -> None:
        """Nothing moved in the repository while the tests ran (they may take half an hour)."""
        moved = None
        if gitcmd.current_branch(self.root) != self.branch or gitcmd.head(self.root) != self.head:
            moved = f"HEAD moved from {self.head[:12]} to {gitcmd.head(self.root)[:12]}"
        elif any(what != "untracked" for what, _ in gitcmd.status(self.root)):
            moved = "the work tree has uncommitted changes"
        elif _read_or_none(self.root / "uv.lock") != old_bytes:
            moved = "uv.lock changed"
        if moved:
            raise _Stop(
                "error",
                f"{self.root}: {moved} during the run, so the tested lock no longer applies; "
                "the update was NOT applied, nothing was written and the live environment is untouched",
                hint="run the update again",
            )

    def _commit_push_deploy(
        self,
        files: dict[str, bytes],
        originals: dict[str, bytes | None],
        parent: str,
        journal: dict[str, Any],
    ) -> None:
        started = time.monotonic()
        for name, content in files.items():
            _write_like(self.root / name, content)
        try:
            commit = gitcmd.commit_paths(
                self.root, sorted(files), updateplan.commit_message(self.result.changes, self.result.policy)
            )
        except VenvkeeperError as exc:
            self._restore(originals, parent, None)
            raise _Stop("commit-failed", f"{exc.message}; uv.lock restored", hint=exc.hint) from None
        self.result.committed, self.result.lock_changed = commit, True
        self.store.write_pending({**journal, "commit": commit})
        self._timed("commit", started)
        if self.remote is not None:
            started = time.monotonic()
            try:
                why = gitcmd.push(self.root, self.remote, self.branch)
            except ToolError as exc:  # a push that timed out may still have landed
                why = exc.message
            if why is not None and gitcmd.remote_head(self.root, self.remote, self.branch) == commit:
                why = None  # git failed after the remote took the commit (a dropped connection)
            self._timed("push", started)
            if why is not None:
                self._restore(originals, parent, commit)
                raise _Stop(
                    "push-rejected",
                    f"git push to {self.remote} {self.branch} was rejected ({why}); the commit was undone, "
                    "uv.lock restored, and the live environment was not touched",
                    hint=(
                        f"pull the remote's changes into {self.root}, then run the update again"
                        if "fetch first" in why or "non-fast-forward" in why
                        else "the remote refused the push; see its message, or run with --no-push"
                    ),
                )
            self.result.pushed = True
        # From here the commit stands (pushed, or about to be live): a kill is reported, not undone.
        self.store.write_pending(
            {**journal, "commit": commit, "pushed": self.result.pushed, "deploying": True}
        )
        self._deploy(commit)

    def _recover(self, who: str) -> None:
        """Undo what a run stopped between writing the lock and deploying it left, or say why not."""
        journal = self.store.read_pending()
        if journal is None:
            return
        self.store.clear_pending()
        commit, parent = journal.get("commit"), journal.get("parent")
        entries = journal.get("files")
        if not isinstance(entries, dict) or not isinstance(parent, str):
            self.result.recovered = f"{self.store.pending} was unreadable; check {self.root} by hand"
            return
        originals = {
            name: None if e.get("original") is None else base64.b64decode(e["original"])
            for name, e in entries.items()
        }
        head = gitcmd.head(self.root)
        if journal.get("deploying"):
            pushed = "pushed" if journal.get("pushed") else "committed"
            self.result.recovered = (
                f"{who} was stopped while deploying {str(commit)[:12]} ({pushed}); "
                "it stays committed, and is deployed only if the live environment runs it"
            )
        elif commit and head == commit:
            self._restore(originals, parent, commit)
            self.result.recovered = (
                f"{who} was stopped before pushing: its commit {commit[:12]} was undone and uv.lock restored"
            )
        elif not commit and head == parent and self._holds_written(entries):
            self._restore(originals, parent, None)
            self.result.recovered = f"{who} was stopped before committing: uv.lock was restored"
        else:
            self.result.recovered = (
                f"{who} was stopped half-way, and the repository has changed since; check {self.root} by hand"
            )
        if who != "this run":
            self.result.restored = False  # this run's own report starts clean

    def _holds_written(self, entries: dict[str, Any]) -> bool:
        """The work tree still has exactly what the killed run wrote (nobody edited it since)."""
        for name, entry in entries.items():
            current = _read_or_none(self.root / name)
            if current is not None and hashlib.sha256(current).hexdigest() != entry.get("written"):
                return False
        return True

    def _restore(self, originals: dict[str, bytes | None], parent: str, commit: str | None) -> None:
        if commit is not None:
            gitcmd.uncommit(self.root, commit, parent, sorted(originals))
        else:
            gitcmd.run_git(["reset", "-q", "--", *sorted(originals)], cwd=self.root, check=False)
        for name, content in originals.items():
            if content is None:
                with contextlib.suppress(FileNotFoundError):
                    (self.root / name).unlink()
            else:
                _write_like(self.root / name, content)
        self.result.committed, self.result.lock_changed, self.result.restored = None, False, True

    def _deploy(self, commit: str) -> None:
        from venvkeeper.deploy.converge import DeployRequest, deploy  # noqa: PLC0415

        started = time.monotonic()
        try:
            # The interpreter the live environment was asked for, so the deploy builds on the one the
            # candidate was tested on.
            python = self.live.interpreter.get("request") if self.live is not None else None
            done = deploy(
                DeployRequest(self.root, self.env, groups=self.groups, python=python, in_place=self.in_place)
            )
        except VenvkeeperError as exc:
            self._timed("deploy", started)
            self._revert(commit, exc)
            raise AssertionError("unreachable") from None  # _revert always raises
        self._timed("deploy", started)
        self.result.live_changed = done.changed
        self.result.generation, self.result.previous = done.generation, done.previous
        where = (
            f"deployed generation {done.generation}"
            if done.changed
            else "the live environment needed no change"
        )
        pushed = f" and pushed to {self.remote} {self.branch}" if self.result.pushed else " (not pushed)"
        self.result.outcome = "updated"
        self.result.reason = (
            f"{_count(self.result.changes)} updated, tests passed, committed{pushed}; {where}"
        )

    def _revert(self, commit: str, exc: VenvkeeperError) -> None:
        """The deploy failed after the commit: publish a revert, so git names what is live."""
        self.result.live_verified = self._live_unchanged()
        try:
            self.result.reverted = gitcmd.revert(self.root, commit)
        except ToolError as failed:
            raise _Stop(
                "deploy-failed",
                f"deploy failed: {exc.message}; the live environment stays as it was, but the tested "
                f"lock is still committed as {commit[:12]}: {failed.message}",
                hint=failed.hint,
            ) from None
        why = gitcmd.push(self.root, self.remote or "origin", self.branch) if self.result.pushed else None
        if why is not None:
            raise _Stop(
                "deploy-failed",
                f"deploy failed: {exc.message}; the live environment stays as it was and commit "
                f"{commit[:12]} was reverted locally by {self.result.reverted[:12]}, but that revert "
                f"could not be pushed ({why})",
                hint=f"push it by hand: git -C {self.root} push",
            )
        raise _Stop(
            "deploy-failed",
            f"deploy failed: {exc.message}; the live environment stays as it was and commit {commit[:12]} "
            f"was reverted by {self.result.reverted[:12]}",
            hint=exc.hint,
        )

    # -- after every run ---------------------------------------------------------------------

    def finish(self) -> None:
        # A permissions refusal is the operator's to look into, not to be "fixed" behind their back.
        # Runs that changed nothing (a refusal, a dry run, a busy run) change no permissions either.
        changed_nothing = self.result.outcome in ("busy", "preflight-failed") or self.result.dry_run
        if not changed_nothing and self.config is not None and self.store_ready:
            self._apply_permissions()
        self._notify()
        if self.store_usable:
            with contextlib.suppress(OSError):
                self.store.append(self.result.history_entry(now_iso()))
                self.store.prune_logs((self.config or UpdateConfig()).keep_backups)

    def _apply_permissions(self) -> None:
        config = self._config()
        if config.group is None:
            return
        from venvkeeper.update import groupperm  # noqa: PLC0415

        problem = groupperm.apply(
            [*self._permission_roots(), self.env], config.group, write=config.group_write
        )
        if problem and self.result.outcome == "updated":
            self.result.reason += f"; but {problem}"

    def _notify(self) -> None:
        result = self.result
        if result.outcome == "busy" or result.dry_run:
            result.notification["skipped"] = "not mailed for " + (
                "a dry run" if result.dry_run else "a busy run"
            )
            return
        from venvkeeper.update import mail  # noqa: PLC0415

        config = self.config
        try:
            settings = mail.load_settings(
                self.given_root, None if config is None else config.notify, os.environ, result.host
            )
        except ConfigError as exc:
            result.notification.update(skipped=None, error=exc.message)
            return
        if result.outcome == "no-updates" and not settings.always:
            result.notification["skipped"] = "no updates (set notify.always to be mailed anyway)"
            return
        if not settings.host:
            result.notification["skipped"] = (
                "no SMTP host configured (VENVKEEPER_SMTP_HOST or notify.smtp-host)"
            )
            return
        if not settings.recipients:
            result.notification.update(
                skipped=None, error="no recipients: set notify.to in pyproject.toml or VENVKEEPER_ADMINS"
            )
            return
        name = (self.workspace.root_name if self.workspace else None) or self.root.name
        started = time.monotonic()
        try:
            mail.send(mail.compose(result.to_json(), result.lock_diff, settings, name), settings)
        except mail.NotifyError as exc:
            result.notification.update(skipped=None, error=exc.message, to=list(settings.recipients))
        else:
            result.notification.update(sent=True, skipped=None, to=list(settings.recipients))
        finally:
            self._timed("notify", started)


def _count(changes: list[updateplan.Change]) -> str:
    return f"{len(changes)} package{'s' if len(changes) != 1 else ''}"


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_like(path: Path, content: bytes) -> None:
    """Replace ``path`` atomically, keeping its permission bits (a new file gets 0644)."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    path.parent.mkdir(parents=True, exist_ok=True)
    fsutil.atomic_write_bytes(path, content, mode=mode)


def update(request: UpdateRequest) -> UpdateResult:
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
    store = UpdateStore.for_env(env)
    run = _Run(request, result, store)
    # systemd and cron stop a run with SIGTERM, whose default action skips every finally: turned into
    # an exception, it lets the run undo what it wrote, record itself and mail the admins.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            run.go()
        except _Stop as stop:
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
        finally:
            result.durations["total"] = time.monotonic() - started
        run.finish()
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
