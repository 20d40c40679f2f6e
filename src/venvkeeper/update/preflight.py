"""update's first step: every check that must pass before anything is resolved, built or written.

The checks run in a fixed order (docs/update.md): the repository, the project, the live environment,
the groups, the live environment runs the checked-out lock, the lock is current, the live environment
is clean, the permissions. The first that fails stops the run with its ``check`` name; nothing was
changed. What they learned is one :class:`Preflight` record for the steps after.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.core.errors import CannotVerifyError, ConfigError, LockError, ToolError, VenvkeeperError
from venvkeeper.gateways import git as gitcmd
from venvkeeper.gateways.uv import find_uv
from venvkeeper.generations import engine
from venvkeeper.generations.layout import GenerationState, Layout, read_state_file
from venvkeeper.project import staging
from venvkeeper.project.facts import ProjectFacts, defined_groups
from venvkeeper.project.plan import Options
from venvkeeper.project.workspace import (
    LockedMember,
    Workspace,
    load_lock_members,
    load_workspace,
    parse_lock,
    stale_member,
)
from venvkeeper.update import groupperm, live, screen
from venvkeeper.update import plan as updateplan
from venvkeeper.update.config import UpdateConfig
from venvkeeper.update.security import Screening
from venvkeeper.update.session import Session, refused

__all__ = ["Preflight", "preflight"]


@dataclass(frozen=True)
class _Repository:
    config: UpdateConfig
    branch: str  # the branch the project is on, and must still be on when the lock is committed
    head: str  # HEAD at preflight: nothing is written unless it is still HEAD


@dataclass(frozen=True)
class _Project:
    workspace: Workspace
    lock: dict[str, Any]  # uv.lock as checked out
    members: tuple[LockedMember, ...]
    test_command: str
    test_timeout: float
    remote: str | None  # None: not pushed


@dataclass(frozen=True)
class Preflight:
    """What the checks found: the project, its live environment, and the staging copies to work in."""

    config: UpdateConfig
    branch: str
    head: str
    workspace: Workspace
    lock: dict[str, Any]
    test_command: str
    test_timeout: float
    remote: str | None
    live: GenerationState
    groups: tuple[str, ...]  # updated and deployed
    test_groups: tuple[str, ...]  # installed in the candidate too, for its tests
    facts: ProjectFacts  # of the checked-out project
    # Two staging copies of the tracked files: the current lock (the baseline candidate is built from
    # it) and the one to re-lock; uv rewrites uv.lock in place, so they cannot be one.
    stage: Path
    relock_stage: Path
    screening: Screening | None = None  # None: no advisory source, security is off

    @property
    def python(self) -> Path:
        """The live environment's interpreter: the candidate is built and tested on it."""
        return Path(self.live.interpreter.get("path", ""))


def preflight(session: Session) -> Preflight:
    repository = _repository(session)
    project = _project(session, repository.config)
    current = _environment(session)
    groups, test_groups = _groups(session, repository.config, project, current)
    _live_current(session, project.workspace, current)
    facts, stage, relock_stage = _lock_current(session, project, current, groups)
    _live_clean(session)
    _permissions(session, repository.config)
    screening = screen.screen_current(session, repository.config, project.lock)
    return Preflight(
        config=repository.config,
        branch=repository.branch,
        head=repository.head,
        workspace=project.workspace,
        lock=project.lock,
        test_command=project.test_command,
        test_timeout=project.test_timeout,
        remote=project.remote,
        live=current,
        groups=groups,
        test_groups=test_groups,
        facts=facts,
        stage=stage,
        relock_stage=relock_stage,
        screening=screening,
    )


def _repository(session: Session) -> _Repository:
    root = session.root
    if not gitcmd.is_work_tree(root):
        raise refused(
            "not-a-git-repo",
            f"{root}: not a git work tree; update commits the lock it tested",
            "deploy from a git checkout of the project",
        )
    try:
        config = session.checked_config()
    except ConfigError as exc:
        raise refused("config", exc.message, exc.hint) from None
    branch = gitcmd.current_branch(root)
    expected = session.request.branch or config.branch or "main"
    if branch != expected:
        seen = f"on branch {branch}" if branch else "on a detached HEAD"
        raise refused(
            "wrong-branch",
            f"{root}: {seen}, expected {expected}",
            f"git checkout {expected}, or set [tool.venvkeeper.update] branch (or --branch)",
        )
    dirty = [(what, path) for what, path in gitcmd.status(root) if what != "untracked"]
    if dirty:
        shown = ", ".join(f"{path} ({what})" for what, path in dirty[:3])
        more = f" and {len(dirty) - 3} more" if len(dirty) > 3 else ""
        raise refused(
            "dirty-tree",
            f"{root}: uncommitted changes: {shown}{more}",
            "commit or discard them; update commits only a lock it tested on a clean tree",
        )
    return _Repository(config, expected, gitcmd.head(root))


def _read_project(session: Session) -> tuple[Workspace, dict[str, Any], tuple[LockedMember, ...]]:
    try:
        workspace = load_workspace(session.root)
    except LockError as exc:
        raise refused("corrupt-lock", exc.message, exc.hint) from None
    except ConfigError as exc:
        raise refused("config", exc.message, exc.hint) from None
    session.result.project_name = workspace.root_name or session.root.name
    try:
        lock = parse_lock(workspace)
        members = load_lock_members(workspace, lock)  # names a member whose pyproject is gone
    except LockError as exc:
        raise refused("corrupt-lock", exc.message, exc.hint) from None
    except ConfigError as exc:
        raise refused("config", exc.message, exc.hint) from None
    return workspace, lock, members


def _project(session: Session, config: UpdateConfig) -> _Project:
    request, root = session.request, session.root
    workspace, lock, members = _read_project(session)
    session.result.policy = request.policy or config.policy
    test_command = request.test_command or config.test_command or ""
    if not test_command and not request.dry_run:
        raise refused(
            "no-test-command",
            f"{root / 'pyproject.toml'}: no test command; an update is only taken when tests pass",
            "set test-command in [tool.venvkeeper.update], or pass --test-command",
        )
    try:
        find_uv()
    except ToolError as exc:
        raise refused("uv-missing", exc.message, exc.hint) from None
    remote = None
    if request.push and not request.dry_run:
        remote = config.remote or gitcmd.upstream_remote(root) or "origin"
        if not gitcmd.remote_exists(root, remote):
            raise refused(
                "no-remote",
                f"{root}: no git remote '{remote}' to push the tested lock to",
                "add the remote (git remote add), set [tool.venvkeeper.update] remote, or pass --no-push",
            )
    timeout = request.test_timeout or config.test_timeout
    return _Project(workspace, lock, members, test_command, timeout, remote)


def _environment(session: Session) -> GenerationState:
    """The live generation this project deployed (an --in-place environment is refused)."""
    env, root = session.env, session.root
    layout = Layout.for_env(env)
    kind = layout.env_kind()
    current: GenerationState | None = None
    in_place = False
    if kind == "generation":
        number = layout.current_number()
        current = layout.read_state(number) if number is not None else None
    elif kind == "venv" and layout.inplace_state.is_file():
        current, in_place = read_state_file(layout.inplace_state), True
    if current is None or current.kind != "deploy":
        raise refused(
            "env-missing",
            f"{env}: not an environment venvkeeper deployed",
            f"deploy it first: venvkeeper deploy {root} --env {env}",
        )
    if in_place:
        raise refused(
            "env-in-place",
            f"{env}: deployed --in-place, which has no atomic switch or rollback, so a failed "
            "update could not leave it as it was",
            f"deploy it as generations: venvkeeper deploy {root} --env {env} (no --in-place)",
        )
    if current.project != str(root):
        raise refused(
            "env-missing",
            f"{env}: deployed from {current.project}, not from {root}",
            f"give the environment this project deploys to, or deploy it from here first "
            f"(venvkeeper deploy {root} --env {env}: unchanged content builds nothing)",
        )
    session.result.generation = session.result.previous = current.number
    return current


def _groups(
    session: Session, config: UpdateConfig, project: _Project, current: GenerationState
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The groups to update (--group, the hosts rule, else those the live environment has), and the
    groups the tests need."""
    result, workspace = session.result, project.workspace
    defined = defined_groups(project.lock, project.members)
    live_groups = current.options.get("groups")
    if isinstance(live_groups, list):
        default, origin = live_groups, "the live environment's groups"
    else:
        default, origin = list(workspace.config.groups), "[tool.venvkeeper] groups"
    groups, result.groups_from = updateplan.groups_for_host(
        session.request.groups, config.hosts, result.host, default
    )
    if result.groups_from == "[tool.venvkeeper] groups":
        result.groups_from = origin
    result.groups = list(groups)
    wanted_tests = config.test_groups
    if wanted_tests is None:
        wanted_tests = ("dev",) if "dev" in defined else ()
    test_groups = tuple(sorted(set(wanted_tests)))
    missing = sorted((set(groups) | set(test_groups)) - set(defined))
    if missing:
        raise refused(
            "missing-groups",
            f"{session.root / 'pyproject.toml'}: dependency group(s) {', '.join(missing)} not defined "
            f"(wanted by {result.groups_from} or test-groups; "
            f"defined: {', '.join(defined) or 'none'})",
            "add the group to [dependency-groups] and run `uv lock`, or fix --group / the hosts rule",
        )
    return groups, test_groups


def _live_current(session: Session, workspace: Workspace, current: GenerationState) -> None:
    """The live environment runs the checked-out lock: the update is judged against what is live."""
    if current.lock_sha256 != hashlib.sha256(workspace.lock_bytes).hexdigest():
        raise refused(
            "env-not-current",
            f"{session.env}: deployed from another uv.lock than the one checked out in {session.root}",
            f"deploy the checked-out lock first: venvkeeper deploy {session.root} --env {session.env}",
        )


def _lock_current(
    session: Session, project: _Project, current: GenerationState, groups: tuple[str, ...]
) -> tuple[ProjectFacts, Path, Path]:
    """The project's facts and its two staging copies; fails unless uv finds the lock current."""
    workspace, members = project.workspace, project.members
    lock_sha = hashlib.sha256(workspace.lock_bytes).hexdigest()
    facts = ProjectFacts(workspace, members, Options(groups, None, False), lock_sha)
    tops = (session.store.stage(), session.store.stage("-new"))
    for top in tops:
        fsutil.remove_tree(top)
        top.mkdir(parents=True)
    stage, relock_stage = (
        staging.populate(session.root, facts.files, top, git=facts.in_git, members=members) for top in tops
    )
    if current.lock_inputs_sha256 == facts.lock_inputs:
        # The same lock and pyproject files uv found current when the live env was deployed.
        return facts, stage, relock_stage
    try:
        engine.check_lock(
            stage,
            workspace.lock_path,
            stale_member(workspace, project.lock, members),
            Path(current.interpreter.get("path", "")),
        )
    except VenvkeeperError as exc:
        # The preflight check is named for the real cause (an unusable cache is not a bad lock).
        check = {"lock-out-of-date": "lock-stale", "": "corrupt-lock", "uv-failed": "corrupt-lock"}.get(
            exc.cause, exc.cause
        )
        raise refused(check, exc.message, exc.hint) from None
    return facts, stage, relock_stage


def _live_clean(session: Session) -> None:
    try:
        findings = live.findings(session.env)
    except CannotVerifyError as exc:
        raise refused("env-not-clean", exc.message, exc.hint) from None
    if findings:
        first = findings[0]
        what = " ".join(str(p) for p in (first.category, first.distribution, first.path) if p)
        raise refused(
            "env-not-clean",
            f"{session.env}: verify found {len(findings)} problem(s), first: {what}",
            f"see `venvkeeper verify --env {session.env}`; repair with `venvkeeper deploy --repair`",
        )


def _permissions(session: Session, config: UpdateConfig) -> None:
    if config.group is None:
        return
    store = session.store
    roots = [store.directory.parent]
    problem = groupperm.check(
        roots,
        config.group,
        write=config.group_write,
        skip=(store.stage(), store.stage("-new"), session.candidate, store.running),
    )
    if problem:
        raise refused("permissions", problem, groupperm.fix_hint(roots, config))
