"""``venvkeeper deploy``: converge an environment on a committed uv.lock, atomically.

The steps, each in its own module: read the workspace (:mod:`workspace`), fingerprint it
(:mod:`hashing`, :mod:`plan`), stage a copy of the tracked files outside the source tree, let uv
check the lock, install the locked packages into a new generation and build the changed members
(:mod:`engine`), smoke-check the result (:mod:`smoke`), then switch --env to it
(:mod:`generations`) and run the hooks (:mod:`hooks`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from venvkeeper import __version__
from venvkeeper.core import files as fsutil
from venvkeeper.core.config import DEFAULT_KEEP
from venvkeeper.core.errors import ConfigError, InterpreterError
from venvkeeper.gateways import git as gitcmd
from venvkeeper.generations.layout import (
    GenerationState,
    Layout,
    now_iso,
    read_packages,
    read_state_file,
    refuse_inside,
)
from venvkeeper.generations.results import DeployResult
from venvkeeper.generations.transaction import (
    Target,
    Undo,
    build_and_switch,
    claim,
    interpreter_identity,
    interpreter_intact,
    moved_note,
    run_post_deploy,
    target_for,
)
from venvkeeper.project import plan, selection, staging
from venvkeeper.project.facts import ProjectFacts, defined_groups, members_for
from venvkeeper.project.workspace import (
    LockedMember,
    Workspace,
    load_workspace,
    parse_lock,
    stale_member,
)

if TYPE_CHECKING:
    from venvkeeper.generations.hooks import HookRun

# The no-op path (the common case under cron or config management) imports only what it needs:
# engine, smoke, wheels, hooks and the thread pool are imported where a build or a hook happens.

__all__ = ["DeployRequest", "deploy"]

A = TypeVar("A")
B = TypeVar("B")


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


def _resolve_options(request: DeployRequest, workspace: Workspace) -> tuple[plan.Options, int]:
    python = request.python if request.python is not None else workspace.config.python
    if python and "/" in python:
        # uv runs in a staging directory, so a relative path must be made absolute from here.
        python = os.path.abspath(python)
    keep = request.keep if request.keep is not None else workspace.config.keep
    groups = selection.chosen(request.groups, workspace.config.groups)
    return plan.Options(groups, python, request.in_place), DEFAULT_KEEP if keep is None else keep


def _both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Run two independent steps (separate uv processes) at once; a failure of either is raised."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(max_workers=2) as pool:
        one, two = pool.submit(first), pool.submit(second)
        return one.result(), two.result()


def deploy(request: DeployRequest) -> DeployResult:
    started = time.monotonic()
    workspace = load_workspace(request.project_dir)
    options, keep = _resolve_options(request, workspace)
    layout = Layout.for_env(request.env)
    refuse_inside(layout.env, workspace.root)
    from venvkeeper.gateways.uv import cache_scope, cache_used  # noqa: PLC0415

    # uv's cache: its default, else (a service user without a usable home) one beside the generations.
    with claim(layout, wait=request.wait), cache_scope(layout.home / "uv-cache", project=workspace.root):
        result = _deploy(request, workspace, options, keep, layout, started)
        used = cache_used()
        result.uv_cache = used.to_json() if used is not None else None
        return result


def _deploy(
    request: DeployRequest,
    workspace: Workspace,
    options: plan.Options,
    keep: int,
    layout: Layout,
    started: float,
) -> DeployResult:
    target = target_for(layout, options)
    lock_sha = hashlib.sha256(workspace.lock_bytes).hexdigest()
    members, lock = members_for(workspace, target.live, lock_sha)
    facts = ProjectFacts(workspace, members, options, lock_sha)
    repair = _plan_repair(layout, target) if request.repair else None
    result = _converge(request, workspace, options, keep, layout, started, target, lock, facts, repair)
    if repair is not None:
        result.repair_findings = repair.findings
        result.repaired, result.cache_refreshed = repair.affected, repair.poisoned
        if not repair.findings and not result.changed:
            result.reason = f"verify found nothing to repair; {result.reason}"
    _stamp(request, workspace, layout, facts, result)
    return result


@dataclass(frozen=True)
class _Repair:
    findings: int  # what verify found in the live environment; any at all forces a rebuild
    affected: list[str]  # distributions with findings (reinstalled when --in-place)
    poisoned: list[str]  # of those, the ones whose files are hard links into a damaged uv cache


def _plan_repair(layout: Layout, target: Target) -> _Repair | None:
    """Verify the live environment; None when there is none to verify (a normal deploy runs).

    uv's cache entries that the damaged files are hard links to are removed first, so the rebuild
    fetches fresh bytes instead of linking the same damaged ones again.
    """
    from venvkeeper.generations import engine  # noqa: PLC0415
    from venvkeeper.generations import inspection as verify  # noqa: PLC0415

    if target.live is None or target.kind not in ("generation", "in-place"):
        return None
    from venvkeeper.core.errors import CannotVerifyError  # noqa: PLC0415

    subject = verify.resolve(str(layout.env))
    try:
        found = verify.inspect(subject).findings
        damaged_manifest = 0
    except CannotVerifyError:
        # The manifest is damaged or does not match its record: check the rest without it, and
        # rebuild in any case, so the new generation is sealed afresh.
        subject.manifest_path = None
        found = verify.inspect(subject).findings
        damaged_manifest = 1
    affected = sorted({f.distribution for f in found if f.distribution})
    poisoned = sorted({f.distribution for f in found if f.distribution and f.cache})
    engine.clean_cache(poisoned)
    return _Repair(len(found) + damaged_manifest, affected, poisoned)


def _stamp(
    request: DeployRequest, workspace: Workspace, layout: Layout, facts: ProjectFacts, result: DeployResult
) -> None:
    """Leave what the next identical no-op needs to answer from file metadata (see fastpath)."""
    from venvkeeper.cli import fastpath  # noqa: PLC0415

    index = gitcmd.index_path(workspace.root)
    if request.in_place:
        state_file, state = layout.inplace_state, read_state_file(layout.inplace_state)
    elif result.generation is not None:
        state_file, state = layout.state_file(result.generation), layout.read_state(result.generation)
    else:
        state_file, state = layout.home, None
    if index is None or state is None or facts.dynamic:
        # Outside git an added file leaves no trace to compare, nor does a new tag in the index's
        # metadata (a version from git), so every run checks in full.
        fastpath.clear_stamp(layout.home)
        return
    root = workspace.root
    read = [root / f for f in facts.files]
    read += [
        root / "uv.lock",
        root / ".python-version",
        index,
        state_file,
        Path(state.interpreter["realpath"]),
    ]
    read += [root / m.path / "pyproject.toml" for m in facts.members]
    fastpath.write_stamp(
        home=layout.home,
        key=fastpath.request_key(
            request.project_dir, request.env, request.groups, request.python, request.in_place
        ),
        target=None if request.in_place else os.readlink(layout.env),
        generation=result.generation,
        files=read,
        now=time.time(),
    )


def _converge(
    request: DeployRequest,
    workspace: Workspace,
    options: plan.Options,
    keep: int,
    layout: Layout,
    started: float,
    target: Target,
    lock: dict[str, Any] | None,
    facts: ProjectFacts,
    repair: _Repair | None = None,
) -> DeployResult:
    live = target.live
    members = facts.members
    lock_sha = facts.lock_sha256
    # A live environment that failed verification is rebuilt even though nothing changed.
    intact = target.healthy and not (repair and repair.findings)
    if live is not None and intact and live.inputs_sha256 == facts.inputs:
        return _unchanged(layout, target, started, "nothing changed since the live environment was built")

    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from venvkeeper.generations import engine  # noqa: PLC0415

    lock = lock if lock is not None else parse_lock(workspace)
    _check_groups(workspace, lock, members, options)
    # Inputs that decide the lock's validity unchanged since the live generation: it is still current.
    lock_known_good = live is not None and live.lock_inputs_sha256 == facts.lock_inputs
    top = stage = Path(tempfile.mkdtemp(prefix="stage-", dir=layout.tmp))
    lock_check = None
    # The copy is removed only once the pool has shut down: the lock check may still be running in it.
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            try:
                stage = staging.populate(workspace.root, facts.files, top, git=facts.in_git, members=members)
                # uv's lock check runs beside everything below; its verdict is awaited before any
                # "unchanged" answer and before the switch (the gate), never skipped.
                # The interpreter first: every uv call below uses it (never uv's own discovery), and one
                # outside requires-python is refused before any slow work.
                python, interpreter = _choose_python(stage, options, live, facts)
                if not lock_known_good:
                    stale = stale_member(workspace, lock, members)
                    lock_check = pool.submit(engine.check_lock, stage, workspace.lock_path, stale, python)

                def gate() -> None:
                    if lock_check is not None:
                        lock_check.result()

                same_groups = live is not None and live.options.get("groups") == options.to_json()["groups"]
                if lock_known_good and same_groups and live is not None and live.export_sha256:
                    export_sha = live.export_sha256
                else:
                    export_sha = engine.export_digest(stage, options.groups, python)
                effective = plan.effective_digest(
                    export_sha256=export_sha,
                    member_hashes=facts.member_hashes,
                    interpreter=interpreter,
                    options=options,
                )
                if live is not None and intact and live.effective_sha256 == effective:
                    gate()
                    return _unchanged(
                        layout,
                        target,
                        started,
                        "the inputs moved but what they install did not (no install ran)",
                    )
                build = _Build(
                    workspace,
                    options,
                    layout,
                    stage,
                    facts,
                    python,
                    interpreter,
                    lock_sha,
                    export_sha,
                    effective,
                    in_workspace="manifest" in lock or len(members) > 1,
                    gate=gate,
                    reinstall=tuple(repair.affected) if repair is not None and options.in_place else (),
                )
                if options.in_place:
                    return _converge_in_place(request, build, target, started)
                return _build_and_switch(request, build, keep, target, started)
            except BaseException:
                # A stale lock explains whatever failed after it: say that, not the symptom (its
                # verdict is awaited: the install may fail before the check has finished).
                failed = lock_check.exception() if lock_check is not None else None
                if failed is not None:
                    raise failed from None
                raise
    finally:
        fsutil.remove_tree(top)


def _choose_python(
    stage: Path, options: plan.Options, live: GenerationState | None, facts: ProjectFacts
) -> tuple[Path, dict[str, Any]]:
    """The interpreter for this deploy and its identity (path, realpath, stat)."""
    python = _find_python(stage, options, live, facts)
    interpreter = interpreter_identity(python)
    if interpreter is None:
        raise InterpreterError(f"{python}: cannot be read", hint="pass --python /path/to/python")
    return python, interpreter


def _find_python(
    stage: Path, options: plan.Options, live: GenerationState | None, facts: ProjectFacts
) -> Path:
    """Ask uv only when the answer could have changed since the live generation was built."""
    from venvkeeper.generations import engine  # noqa: PLC0415

    request = options.python
    if (
        live is not None
        and live.interpreter.get("request") == request
        and live.interpreter.get("python_version_file") == facts.python_version_file
        and live.lock_inputs_sha256 == facts.lock_inputs  # requires-python unchanged
        and interpreter_intact(live)
    ):
        return Path(live.interpreter["path"])
    # A path too (made absolute when the options were read): uv checks it against requires-python.
    return engine.find_python(stage, request, project=facts.workspace.root)


def _check_groups(
    workspace: Workspace, lock: dict[str, Any], members: Sequence[LockedMember], options: plan.Options
) -> None:
    defined = defined_groups(lock, members)
    unknown = plan.undefined_groups(options.groups, defined)
    if unknown:
        raise ConfigError(
            f"unknown dependency group '{unknown[0]}': {workspace.root / 'pyproject.toml'} and its members "
            f"define {', '.join(defined) or 'no groups'}",
            hint="check the --group name (or [tool.venvkeeper] groups), or add the group and run `uv lock`",
        )


def _unchanged(layout: Layout, target: Target, started: float, reason: str) -> DeployResult:
    return DeployResult(
        "deploy",
        env=str(layout.env),
        changed=False,
        generation=target.live_number,
        previous=target.live_number,
        reason=reason,
        in_place=target.kind == "in-place",
        duration_s=time.monotonic() - started,
    )


@dataclass(frozen=True)
class _Build:
    workspace: Workspace
    options: plan.Options
    layout: Layout
    stage: Path
    facts: ProjectFacts
    python: Path
    interpreter: dict[str, Any]
    lock_sha: str
    export_sha: str
    effective: str
    in_workspace: bool
    gate: Callable[[], None]  # raises if uv found the lock out of date
    reinstall: tuple[str, ...] = ()  # --repair --in-place: distributions to install afresh


def _wheel_slot(layout: Layout, name: str, digest: str, interpreter: dict[str, Any]) -> Path:
    # Keyed by content and interpreter: a member with compiled code differs per interpreter.
    interp = hashlib.sha256(interpreter["realpath"].encode()).hexdigest()[:12]
    return layout.wheels / name / f"{digest[:32]}-{interp}"


def _build_members(build: _Build) -> tuple[dict[str, Path], list[str], list[str]]:
    """Wheels for every package member: from the cache by content, else built from the staging copy.

    Never uv's own cache for these: uv keys a local directory's build by its pyproject.toml's mtime,
    so an edited module with no version bump would come back stale (the defect this tool exists for).
    """
    from venvkeeper.generations import engine  # noqa: PLC0415

    layout, facts = build.layout, build.facts
    wheels: dict[str, Path] = {}
    cached: dict[str, bool] = {}
    for name, digest in facts.member_hashes.items():
        found = sorted(_wheel_slot(layout, name, digest, build.interpreter).glob("*.whl"))
        cached[name] = len(found) == 1
        if len(found) == 1:
            wheels[name] = found[0]
    to_build = plan.members_to_build(facts.member_hashes, cached)
    by_name = {m.name: m for m in facts.members}
    for name in to_build:
        slot = _wheel_slot(layout, name, facts.member_hashes[name], build.interpreter)
        out = Path(tempfile.mkdtemp(prefix=f"build-{name}-", dir=layout.tmp))
        try:
            built = engine.build_wheel(
                build.stage, name, by_name[name].path, out, build.python, in_workspace=build.in_workspace
            )
            fsutil.remove_tree(slot)
            slot.parent.mkdir(parents=True, exist_ok=True)
            os.rename(out, slot)  # whole-directory rename: a slot is complete or absent
        finally:
            fsutil.remove_tree(out)
        wheels[name] = slot / built.name
    reused = sorted(set(facts.member_hashes) - set(to_build))
    return wheels, to_build, reused


@dataclass(frozen=True)
class _Populated:
    state: GenerationState
    rebuilt: list[str]
    reused: list[str]


def _populate(build: _Build, env_dir: Path, number: int, started: float, manifest_path: Path) -> _Populated:
    """Install the lock and the members into ``env_dir``, smoke-check it, seal it, and describe it."""
    from venvkeeper.gateways.uv import uv_cache, uv_version  # noqa: PLC0415
    from venvkeeper.generations import engine  # noqa: PLC0415
    from venvkeeper.generations.manifest import seal  # noqa: PLC0415
    from venvkeeper.generations.smoke import smoke_check  # noqa: PLC0415
    from venvkeeper.generations.wheels import inspect_wheel  # noqa: PLC0415

    _, (wheels, rebuilt, reused) = _both(
        lambda: engine.sync_dependencies(
            build.stage, env_dir, build.python, build.options.groups, reinstall=build.reinstall
        ),
        lambda: _build_members(build),
    )
    if wheels:  # a project of dependencies only (a virtual root) has no member to install
        engine.install_wheels(build.stage, env_dir, list(wheels.values()), reinstall=bool(build.reinstall))
    infos = {name: inspect_wheel(path) for name, path in wheels.items()}
    # The smoke check writes nothing (no bytecode), so the manifest can be sealed while it runs.
    report, (manifest, cache_dir) = _both(
        lambda: smoke_check(
            env_dir,
            sorted({m for i in infos.values() for m in i.top_level}),
            sorted({s for i in infos.values() for s in i.scripts}),
        ),
        lambda: (seal(env_dir, build.facts.member_entries), engine.cache_dir()),
    )
    manifest_sha = fsutil.atomic_write_json(manifest_path, manifest.to_json(), compact=True)
    build.gate()
    state = GenerationState(
        number=number,
        kind="deploy",
        created=now_iso(),
        packages={name: d["version"] for name, d in manifest.distributions.items()},
        project=str(build.workspace.root),
        lock_sha256=build.lock_sha,
        export_sha256=build.export_sha,
        inputs_sha256=build.facts.inputs,
        lock_inputs_sha256=build.facts.lock_inputs,
        effective_sha256=build.effective,
        members=[
            {
                **m.to_json(),
                "sha256": build.facts.member_hashes.get(m.name),
                "files_sha256": build.facts.file_hashes.get(m.name),
                "wheel": str(wheels[m.name]) if m.name in wheels else None,
                "top_level": list(infos[m.name].top_level) if m.name in infos else [],
                "scripts": list(infos[m.name].scripts) if m.name in infos else [],
            }
            for m in build.facts.members
        ],
        interpreter={
            **build.interpreter,
            "request": build.options.python,
            "python_version_file": build.facts.python_version_file,
            "version": report["version"],
            "implementation": report["implementation"],
            "markers": report["markers"],
        },
        options=build.options.to_json(),
        uv_version=uv_version(),
        uv_cache_dir=cache_dir,
        uv_cache_why=uv_cache().why,
        manifest_sha256=manifest_sha,
        venvkeeper_version=__version__,
        duration_s=round(time.monotonic() - started, 3),
    )
    return _Populated(state, rebuilt, reused)


def _converge_in_place(request: DeployRequest, build: _Build, target: Target, started: float) -> DeployResult:
    """--in-place: converge --env itself (container images), with the same change detection."""
    layout = build.layout
    before = read_packages(layout.env) if target.env_kind == "venv" else {}
    if target.env_kind == "empty":
        layout.env.rmdir()
    # The record goes first: a run killed half-way must not leave a record saying "unchanged".
    with contextlib.suppress(FileNotFoundError):
        layout.inplace_state.unlink()
    if target.moved_from is not None and target.live is not None:
        # Moved in place: uv leaves installed packages alone, so every script would keep naming the
        # old path. The venv's own files (activate) are written afresh and every package reinstalled.
        from dataclasses import replace  # noqa: PLC0415

        from venvkeeper.generations import engine  # noqa: PLC0415

        engine.create_venv(layout.env, str(build.python), allow_existing=True)
        build = replace(build, reinstall=tuple(sorted({*build.reinstall, *target.live.packages})))
    done = _populate(build, layout.env, 0, started, layout.inplace_manifest)
    done.state.directory = str(layout.env)
    fsutil.atomic_write_json(layout.inplace_state, done.state.to_json())
    hook_runs = _run_post_deploy(request, build.workspace, layout, None, Undo())
    return DeployResult(
        "deploy",
        env=str(layout.env),
        changed=True,
        generation=None,
        previous=None,
        packages=plan.diff_packages(before, done.state.packages),
        rebuilt=done.rebuilt,
        reused=done.reused,
        hooks=hook_runs,
        in_place=True,
        reason=moved_note(target) + "converged in place",
        duration_s=time.monotonic() - started,
    )


def _build_and_switch(
    request: DeployRequest, build: _Build, keep: int, target: Target, started: float
) -> DeployResult:
    layout = build.layout
    rebuilt: list[str] = []
    reused: list[str] = []

    def populate(env_dir: Path, number: int, manifest_path: Path) -> GenerationState:
        done = _populate(build, env_dir, number, started, manifest_path)
        rebuilt.extend(done.rebuilt)
        reused.extend(done.reused)
        return done.state

    switched = build_and_switch(
        layout,
        target,
        keep,
        populate,
        lambda number, undo: _run_post_deploy(request, build.workspace, layout, number, undo),
    )
    _prune_wheels(layout)
    return DeployResult(
        "deploy",
        env=str(layout.env),
        changed=True,
        generation=switched.number,
        previous=switched.previous,
        packages=plan.diff_packages(switched.previous_packages, switched.state.packages),
        rebuilt=rebuilt,
        reused=reused,
        hooks=switched.hooks,
        adopted=switched.adopted,
        pruned=switched.pruned,
        reason=moved_note(target) + "new generation built",
        duration_s=time.monotonic() - started,
    )


def _run_post_deploy(
    request: DeployRequest, workspace: Workspace, layout: Layout, number: int | None, undo: Undo
) -> list[HookRun]:
    hooks = workspace.config.hooks
    if not hooks.post_deploy:
        return []
    cwd = (workspace.root / hooks.directory).resolve() if hooks.directory else workspace.root
    return run_post_deploy(
        hooks.post_deploy, cwd, hooks.timeout, layout, number, undo, rollback=request.rollback_on_hook_failure
    )


def _prune_wheels(layout: Layout) -> None:
    """Drop cached member wheels that no kept generation was built from."""
    wanted: set[Path] = set()
    for number in layout.numbers():
        state = layout.read_state(number)
        for member in state.members if state else []:
            if member.get("wheel"):
                wanted.add(Path(member["wheel"]).parent)
    for member_dir in layout.wheels.iterdir() if layout.wheels.is_dir() else []:
        for slot in member_dir.iterdir():
            if slot not in wanted:
                shutil.rmtree(slot, ignore_errors=True)
