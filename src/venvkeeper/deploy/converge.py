"""``venvkeeper deploy``: converge an environment on a committed uv.lock, atomically.

This module gathers the facts and carries the decision out; the decision itself is a value
(:mod:`venvkeeper.deploy.decision`). The steps: read the workspace and fingerprint it
(:mod:`venvkeeper.project.facts`), look at what stands at --env, stage a copy of the tracked files
outside the source tree, ask uv only what the decision needs (the interpreter, the export digest; the
lock check runs beside), decide, then populate a new generation and switch to it, or converge --env in
place (:mod:`venvkeeper.deploy.populate`, :mod:`venvkeeper.generations.transaction`), and run the hooks.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from venvkeeper.core import files as fsutil
from venvkeeper.core.config import DEFAULT_KEEP
from venvkeeper.core.errors import InterpreterError
from venvkeeper.core.lazy import lazy
from venvkeeper.deploy import decision, noopstamp
from venvkeeper.deploy.decision import Decision, Found, Live, Project, Repair
from venvkeeper.gateways import uv
from venvkeeper.generations import stamp as stamps
from venvkeeper.generations.layout import Layout, refuse_inside
from venvkeeper.generations.results import DeployResult
from venvkeeper.generations.transaction import (
    Target,
    Undo,
    build_and_switch,
    build_in_place,
    claim,
    interpreter_identity,
    interpreter_intact,
    run_post_deploy,
    switched_result,
    target_for,
)
from venvkeeper.project import plan, selection, staging
from venvkeeper.project.facts import ProjectFacts, defined_groups, members_for
from venvkeeper.project.workspace import Workspace, load_workspace, parse_lock, stale_member

# The no-op path (the common case under cron or config management) loads only what deciding needs:
# uv's operations, the build, the verify behind --repair and the thread pool load when they run.
if TYPE_CHECKING:
    from concurrent import futures
    from concurrent.futures import Future

    from venvkeeper.deploy import checkrun, populate, repair
    from venvkeeper.generations import engine, wheelcache
    from venvkeeper.generations.hooks import HookRun
else:
    futures = lazy("concurrent.futures")
    checkrun = lazy("venvkeeper.deploy.checkrun")
    populate = lazy("venvkeeper.deploy.populate")
    repair = lazy("venvkeeper.deploy.repair")
    engine = lazy("venvkeeper.generations.engine")
    wheelcache = lazy("venvkeeper.generations.wheelcache")

__all__ = ["DeployRequest", "deploy"]


@dataclass(frozen=True)
class DeployRequest:
    project_dir: Path
    env: Path
    groups: tuple[str, ...] | None = None  # None: take [tool.venvkeeper] groups
    python: str | None = None
    keep: int | None = None
    in_place: bool = False
    wait: bool = True
    rollback_on_hook_failure: bool = True
    repair: bool = False  # verify the live environment; rebuild it (uv's cache refreshed) if it differs
    # --no-hooks: a change runs no post-deploy hook (a container layer must not run the production
    # migration); everything else (switch, prune, stamp) is the same.
    run_hooks: bool = True
    # --check: decide as a deploy would, answer with the plan (deploy.check), and write nothing at all:
    # no claim (no state directory or lock file), no stamp, uv on a throwaway cache, staging in $TMPDIR.
    check: bool = False
    diff: bool = False  # --diff: the package changes as before/after lines too


@dataclass(frozen=True)
class _Run:
    """One deploy's facts, gathered before deciding."""

    request: DeployRequest
    workspace: Workspace
    options: plan.Options
    keep: int
    layout: Layout
    started: float
    target: Target
    facts: ProjectFacts
    project: Project
    live: Live
    lock: dict[str, Any] | None  # parsed already (None: not needed to know the members)


def _resolve_options(request: DeployRequest, workspace: Workspace) -> tuple[plan.Options, int]:
    python = request.python if request.python is not None else workspace.config.python
    if python and "/" in python:
        # uv runs in a staging directory, so a relative path must be made absolute from here.
        python = os.path.abspath(python)
    keep = request.keep if request.keep is not None else workspace.config.keep
    groups = selection.chosen(request.groups, workspace.config.groups)
    return plan.Options(groups, python, request.in_place), DEFAULT_KEEP if keep is None else keep


def deploy(request: DeployRequest) -> DeployResult:
    started = time.monotonic()
    workspace = load_workspace(request.project_dir)
    options, keep = _resolve_options(request, workspace)
    layout = Layout.for_env(request.env)
    refuse_inside(layout.env, workspace.root)
    if request.check:
        layout.preparable()  # what a deploy would refuse first, asked without creating anything
        with uv.throwaway_cache():
            result = _deploy(_gather(request, workspace, options, keep, layout, started))
    else:
        # uv's cache: its default, else (a service user without a usable home) one beside the generations.
        fallback = layout.home / "uv-cache"
        with claim(layout, wait=request.wait), uv.cache_scope(fallback, project=workspace.root):
            result = _deploy(_gather(request, workspace, options, keep, layout, started))
            used = uv.cache_used()
            result.uv_cache = used.to_json() if used is not None else None
    result.show_diff = request.diff
    return result


def _gather(
    request: DeployRequest,
    workspace: Workspace,
    options: plan.Options,
    keep: int,
    layout: Layout,
    started: float,
) -> _Run:
    """What the decision needs, before any uv: the project's fingerprints and what stands at --env."""
    target = target_for(layout, options)
    lock_sha = hashlib.sha256(workspace.lock_bytes).hexdigest()
    recorded = target.live
    members, lock = members_for(
        workspace, lock_sha, recorded.lock_sha256 if recorded else None, recorded.members if recorded else []
    )
    # The lock's requires-python: the same bytes as the record's lock carry the record's value.
    requires_python = (
        lock.get("requires-python")
        if lock is not None
        else recorded.interpreter.get("requires_python")
        if recorded
        else None
    )
    facts = ProjectFacts(workspace, members, options, lock_sha, requires_python)
    found = repair.plan_repair(layout, target, clean=not request.check) if request.repair else None
    live = Live(
        env=str(layout.env),
        kind=target.kind,
        env_kind=target.env_kind,
        number=target.live_number,
        record=recorded,
        healthy=target.healthy,
        # Healthy includes it: the interpreter is looked at again only when the environment is not.
        interpreter_intact=target.healthy or (recorded is not None and interpreter_intact(recorded)),
        moved_from=target.moved_from,
        repair=found,
    )
    project = Project(
        pyproject=str(workspace.root / "pyproject.toml"),
        inputs=facts.inputs,
        lock_inputs=facts.lock_inputs,
        python_version_file=facts.python_version_file,
        member_hashes=facts.member_hashes,
        # Only a lock read now says it: the record's value, carried over for unchanged lock bytes, would
        # compare equal with itself whatever else moved (a pyproject's [tool.uv] python-preference).
        requires_python=facts.requires_python if lock is not None else None,
        hooks=tuple(workspace.config.hooks.post_deploy),
    )
    return _Run(request, workspace, options, keep, layout, started, target, facts, project, live, lock)


def _deploy(run: _Run) -> DeployResult:
    if decision.settled_by_inputs(run.project, run.live):
        decided = decision.decide(run.project, run.live, run.options)
        result = _planned(run, decided) if run.request.check else _unchanged(run, decided)
    else:
        lock = run.lock if run.lock is not None else parse_lock(run.workspace)
        defined = tuple(defined_groups(lock, run.facts.members))
        result = _converge(replace(run, project=replace(run.project, defined_groups=defined)), lock)
    found: Repair | None = run.live.repair
    if found is not None:
        result.repair_findings = found.findings + bool(found.sbom)  # a rewritten SBOM was a finding too
        result.repaired, result.cache_refreshed = list(found.affected), list(found.poisoned)
        if run.request.check and found.findings:
            # The plan alone ("a new generation would be built") would not say that a repair is why.
            result.reason = f"{repair.described(found)}; {result.reason}"
    if not run.request.check:
        request = run.request
        key = stamps.request_key(
            request.project_dir, request.env, request.groups, request.python, request.in_place
        )
        noopstamp.leave(run.layout, run.facts, key, in_place=request.in_place, generation=result.generation)
    return result


def _converge(run: _Run, lock: dict[str, Any]) -> DeployResult:
    """Stage the project, ask uv what the decision needs (its checks beside), decide, carry it out."""
    # An unknown group is refused here, before any slow work.
    asked = decision.questions(run.project, run.live, run.options)
    top = Path(tempfile.mkdtemp(prefix="stage-", dir=None if run.request.check else run.layout.tmp))
    verdicts = _Verdicts()
    # The copy is removed only once the pool has shut down: a check may still be running in it.
    try:
        with futures.ThreadPoolExecutor(max_workers=2) as pool:
            try:
                stage = staging.populate(
                    run.workspace.root, run.facts.files, top, git=run.facts.in_git, members=run.facts.members
                )
                python, identity = _interpreter(run, asked, stage, pool, verdicts)
                if asked.check_lock:
                    stale = stale_member(run.workspace, lock, run.facts.members)
                    verdicts.lock = pool.submit(
                        engine.check_lock, stage, run.workspace.lock_path, stale, python
                    )
                found = _found(run, asked, stage, python, identity)
                # One outside requires-python is refused before any slow work (checked beside the export).
                verdicts.interpreter_checked()
                decided = decision.decide(
                    run.project,
                    run.live,
                    run.options,
                    found,
                    rollback=run.request.rollback_on_hook_failure,
                    run_hooks=run.request.run_hooks,
                )
                if run.request.check:
                    verdicts.gate()
                    return _planned(run, decided, found, lock, stage)
                if not decided.changed:
                    verdicts.gate()
                    return _unchanged(run, decided)
                build = populate.Build(
                    decided,
                    found,
                    run.facts,
                    run.options,
                    run.layout,
                    stage,
                    in_workspace="manifest" in lock or len(run.facts.members) > 1,
                    gate=verdicts.gate,
                    started=run.started,
                )
                return _in_place(run, build) if decided.in_place else _new_generation(run, build)
            except BaseException:
                # A stale lock or an unusable interpreter explains whatever failed after it: say that,
                # not the symptom (awaited: the install may fail before the check has finished).
                failed = verdicts.first_failure()
                if failed is not None:
                    raise failed from None
                raise
    finally:
        fsutil.remove_tree(top)


@dataclass
class _Verdicts:
    """uv's checks that run beside the deploy's own work: their verdicts gate it (an "unchanged" answer,
    the switch) and explain whatever failed after them."""

    interpreter: Future[Path] | None = None  # ``uv python find`` of a --python path
    lock: Future[None] | None = None  # ``uv lock --check``

    def interpreter_checked(self) -> None:
        if self.interpreter is not None:
            self.interpreter.result()

    def gate(self) -> None:
        for check in (self.interpreter, self.lock):
            if check is not None:
                check.result()

    def first_failure(self) -> BaseException | None:
        for check in (self.interpreter, self.lock):
            failed = check.exception() if check is not None else None
            if failed is not None:
                return failed
        return None


def _interpreter(
    run: _Run, asked: decision.Questions, stage: Path, pool: futures.Executor, verdicts: _Verdicts
) -> tuple[Path, dict[str, Any]]:
    """The interpreter first: every uv call after it uses it (never uv's own discovery). The live
    record's, when it still holds; a --python path as given (made absolute when the options were
    read), with uv's check of it (it runs, it is inside requires-python) beside the export: a cold
    ``uv python find`` runs the interpreter to ask it, 0.1-0.2 s; else the one uv finds."""
    request = run.options.python
    if asked.interpreter is not None:
        python = Path(asked.interpreter)
    elif request and "/" in request:
        python = Path(request)  # what find_python answers for a path, once uv has checked it
        verdicts.interpreter = pool.submit(engine.find_python, stage, request, project=run.workspace.root)
    else:
        python = engine.find_python(stage, request, project=run.workspace.root)
    identity = interpreter_identity(python)
    if identity is None:
        verdicts.interpreter_checked()  # uv's own words for a path that is no interpreter, if it has them
        raise InterpreterError(f"{python}: cannot be read", hint="pass --python /path/to/python")
    return python, identity


def _found(
    run: _Run, asked: decision.Questions, stage: Path, python: Path, identity: dict[str, Any]
) -> Found:
    """The rest the decision needs (uv's lock check runs beside it, its verdict awaited before any
    "unchanged" answer and before the switch): uv's export digest unless the live record has it."""
    text = None if asked.export_sha256 else engine.export_text(stage, run.options.groups, python)
    export = asked.export_sha256 or engine.digest_of_export(text or "")
    cached = wheelcache.cached(run.layout, run.facts.member_hashes, identity)
    return Found(str(python), identity, export, frozenset(cached), export_text=text)


def _unchanged(run: _Run, decided: Decision) -> DeployResult:
    return DeployResult(
        "deploy",
        env=str(run.layout.env),
        changed=False,
        generation=decided.generation,
        previous=decided.generation,
        reason=decided.reason + _moved_source(run),
        in_place=decided.in_place,
        duration_s=time.monotonic() - run.started,
    )


def _moved_source(run: _Run) -> str:
    """The same content deployed from another checkout: nothing is built, but the record now names this
    one as the source (``update`` works on the checkout the environment is deployed from)."""
    record, root = run.live.record, str(run.workspace.root)
    if record is None or record.project in (None, root):
        return ""
    path = run.layout.inplace_state if run.request.in_place else run.layout.state_file(record.number)
    was, record.project = record.project, root
    # The file as it is, but for its project: keys a newer venvkeeper wrote are kept.
    fsutil.atomic_write_json(path, {**json.loads(path.read_bytes()), "project": root})
    return f"; now recorded as deployed from {root} (was {was})"


def _planned(
    run: _Run,
    decided: Decision,
    found: Found | None = None,
    lock: dict[str, Any] | None = None,
    stage: Path | None = None,
) -> DeployResult:
    """``--check``: the decision as a plan (:mod:`venvkeeper.deploy.checkrun`)."""
    return checkrun.planned(
        checkrun.Asked(run.layout, run.target, run.facts, run.project, run.live, run.options, run.started),
        decided,
        found,
        lock,
        stage,
    )


def _in_place(run: _Run, build: populate.Build) -> DeployResult:
    """--in-place: converge --env itself (container images), with the same change detection."""
    done = build_in_place(run.layout, run.target, lambda d, n, m: populate.populate(build, d, n, m))
    hook_runs = _run_post_deploy(run, build.decision, None, Undo())
    return DeployResult(
        "deploy",
        env=str(run.layout.env),
        changed=True,
        generation=None,
        previous=None,
        packages=plan.diff_packages(done.previous_packages, done.state.packages),
        rebuilt=list(build.decision.rebuild),
        reused=list(build.decision.reuse),
        hooks=hook_runs,
        in_place=True,
        reason=build.decision.reason,
        duration_s=time.monotonic() - run.started,
    )


def _new_generation(run: _Run, build: populate.Build) -> DeployResult:
    switched = build_and_switch(
        run.layout,
        run.target,
        run.keep,
        lambda d, n, m: populate.populate(build, d, n, m),
        lambda number, undo: _run_post_deploy(run, build.decision, number, undo),
        adopt=build.decision.adopt,
    )
    wheelcache.prune(run.layout)
    return switched_result(
        "deploy",
        run.layout,
        switched,
        build.decision.reason,
        run.started,
        rebuilt=list(build.decision.rebuild),
        reused=list(build.decision.reuse),
    )


def _run_post_deploy(run: _Run, decided: Decision, number: int | None, undo: Undo) -> list[HookRun]:
    if not decided.hooks:
        return []
    hooks, root = run.workspace.config.hooks, run.workspace.root
    cwd = (root / hooks.directory).resolve() if hooks.directory else root
    return run_post_deploy(
        decided.hooks,
        cwd,
        hooks.timeout,
        run.layout,
        number,
        undo,
        rollback=decided.rollback_on_hook_failure,
    )
