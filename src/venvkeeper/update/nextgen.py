"""The next generation, built while the tests run and switched to when they pass (issue 14).

A passing update used to deploy its lock afresh after the tests: a third install, of something no test
had seen. Here the generation that goes live is built first, beside the live one, as a deploy builds it
(a hard-link clone of the live generation, then the delta: ``uv sync --inexact`` of the re-locked lock
for the deployed groups, what it dropped removed, the members whose content changed; the smoke check;
the seal), and the candidate's tests run in a clone of *it* with the test groups added
(:mod:`venvkeeper.update.candidate`). Once the lock is committed, :func:`switch` writes the record a
deploy of the committed project writes and switches --env to that very directory: what goes live is,
file for file, what the tests imported.

The generation is built under --env's lock, as a deploy's, but recorded only at the switch. Until then
it is an incomplete generation: a deploy meanwhile sweeps it, a kill leaves it to the next run's sweep,
and :func:`switch` then finds it gone (or the live generation changed) and lets the deploy build.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper import __version__
from venvkeeper.core import locking
from venvkeeper.core.config import DEFAULT_KEEP
from venvkeeper.core.errors import BusyError, InterpreterError
from venvkeeper.gateways import git as gitcmd
from venvkeeper.gateways.uv import uv_cache, uv_version
from venvkeeper.generations import delta, engine, identity, wheelcache
from venvkeeper.generations import dropped as lockdrop
from venvkeeper.generations import stamp as stamps
from venvkeeper.generations.build import (
    Finished,
    both,
    finish,
    install_locked,
    installing,
    interpreter_record,
    members_step,
)
from venvkeeper.generations.clone import Clone, CloneRefusedError
from venvkeeper.generations.layout import GenerationState, Layout, now_iso
from venvkeeper.generations.results import DeployResult
from venvkeeper.generations.transaction import (
    Target,
    Undo,
    claim,
    run_post_deploy,
    switch_prepared,
    switched_result,
    target_for,
)
from venvkeeper.generations.transaction import interpreter_identity as identity_of
from venvkeeper.generations.wheels import WheelInfo, inspect_wheel
from venvkeeper.project import plan, selection
from venvkeeper.project.facts import ProjectFacts
from venvkeeper.project.hashing import digest_entries, member_files, tree_entries
from venvkeeper.project.workspace import (
    LockedMember,
    Workspace,
    load_lock_members,
    load_workspace,
    parse_lock,
)
from venvkeeper.sbom import generation as sbomgen
from venvkeeper.update.preflight import Preflight
from venvkeeper.update.session import Session

__all__ = ["Prepared", "discard", "intact", "prepare", "remove_test_envs", "switch"]


@dataclass(frozen=True)
class Prepared:
    """A generation built from the re-locked lock, sealed; not yet recorded nor live."""

    number: int
    source: int  # the live generation it was cloned from, which must still be live at the switch
    directory: Path
    finished: Finished  # the smoke check's report, the manifest and its sha256
    wheels: dict[str, Path]  # the members' wheels (in the member wheel cache)
    infos: dict[str, WheelInfo]
    member_hashes: dict[str, str]  # the members as the committed project hashes them
    export_sha256: str
    interpreter: dict[str, Any]
    built: dict[str, Any]  # the record's ``built``
    duration_s: float  # how long building it took (the record's, as a deploy's)


def options(pre: Preflight, workspace: Workspace) -> plan.Options:
    """The options ship's deploy was asked for (the groups, the live interpreter's request), resolved
    as deploy resolves them, so that the record compares equal with the next deploy's."""
    python = pre.live.interpreter.get("request")
    python = python if python is not None else workspace.config.python
    if python and "/" in python:
        python = os.path.abspath(python)
    return plan.Options(selection.chosen(pre.groups, workspace.config.groups), python, False)


@dataclass(frozen=True)
class _Staged:
    """The members as the committed project will hash them: their tracked files (and the exports the
    commit adds), read from the re-lock's staging copy, which holds exactly those with the new lock."""

    members: tuple[LockedMember, ...]
    member_entries: dict[str, dict[str, str]]
    member_hashes: dict[str, str]


def _stage_facts(pre: Preflight) -> _Staged:
    # The file list is the project's (git's), not the staging copy's own: that may lie inside some
    # other work tree, whose git would list nothing there. A member whose version comes from git hashes
    # the new commit too, so it differs after the commit and ship deploys (nextgen.switch).
    files = sorted({*pre.facts.files, *(e.path for e in pre.config.exports)})
    members = pre.facts.members
    paths = [m.path for m in members]
    stage = pre.relock_stage
    entries = {m.name: tree_entries(stage, member_files(files, m.path, paths)) for m in members if m.package}
    return _Staged(members, entries, {name: digest_entries(e) for name, e in entries.items()})


def prepare(
    session: Session, pre: Preflight, linked: tuple[int, Mapping[str, int]] | None = None
) -> Prepared:
    """Build the next generation from the re-locked lock beside the live one, under --env's lock.
    ``linked``: a generation the baseline cloned and the ctimes its links left (delta.start's)."""
    started = time.monotonic()
    layout = Layout.for_env(session.env)
    for export in pre.config.exports:  # the staging copy as the commit will make the project
        content = engine.export_file(pre.relock_stage, export.format, pre.groups, pre.python)
        (pre.relock_stage / export.path).parent.mkdir(parents=True, exist_ok=True)
        (pre.relock_stage / export.path).write_bytes(content)
    facts = _stage_facts(pre)
    try:
        with claim(layout, wait=True):
            source = layout.current_number()
            if source is None:
                raise BusyError(f"{session.env}: no longer a generation", hint="run the update again")
            number = layout.next_number()
            try:
                explained = linked[1] if linked is not None and linked[0] == source else None
                return _build(pre, facts, (layout, source, number), started, explained)
            except BaseException:
                _remove(layout, number)
                raise
    finally:
        session.timed("generation", started)


def _build(
    pre: Preflight,
    facts: _Staged,
    where: tuple[Layout, int, int],
    started: float,
    linked: Mapping[str, int] | None,
) -> Prepared:
    layout, source, number = where
    env_dir, stage, python = layout.gen_dir(number), pre.relock_stage, pre.python
    interpreter = identity_of(python)
    if interpreter is None:
        raise InterpreterError(
            f"{python}: the live environment's interpreter cannot be read", hint="deploy the project again"
        )
    hashes = dict(facts.member_hashes)
    members = {m.name: (m.path, hashes[m.name]) for m in facts.members if m.name in hashes}
    in_workspace = "manifest" in pre.lock or len(facts.members) > 1
    refused: list[str] = []

    def clone_and_sync() -> Clone | None:
        try:
            cloned = delta.start(layout, source, env_dir, linked)
        except CloneRefusedError as exc:
            refused.append(f"the clone of generation {source} was refused: {exc}")
            return None
        third = sorted(cloned.reinstall - set(members))
        # Members too: uv links an installed wheel from what it unpacked into its cache (as deploy).
        engine.clean_cache(sorted(cloned.poisoned))
        with installing(env_dir, "installing the lock's changes"):
            engine.sync_dependencies(stage, env_dir, python, pre.groups, third, inexact=True)
        return cloned

    def wheels_and_export() -> tuple[dict[str, Path], str]:
        wheels = wheelcache.member_wheels(
            layout, stage, python, interpreter, members, (), in_workspace=in_workspace
        )
        return wheels, engine.export_text(stage, pre.groups, python)

    cloned, (wheels, export_text) = both(clone_and_sync, wheels_and_export)
    if cloned is not None:  # what the lock no longer installs (as deploy reads it from the same export)
        markers = pre.live.interpreter.get("markers", {})
        dropped = lockdrop.extraneous(env_dir, export_text, markers, members)
        if dropped is None:  # a path dependency: nothing removed on a guess, built from nothing (as deploy)
            refused.append(
                f"the clone of generation {source} was refused: uv's export names a dependency by path"
            )
            delta.empty(env_dir)
            cloned = None
        elif dropped:
            engine.uninstall(stage, env_dir, dropped)
    export = engine.digest_of_export(export_text)
    infos = {name: inspect_wheel(path) for name, path in wheels.items()}
    if cloned is None:
        install_locked(stage, env_dir, python, pre.groups, lambda: wheels)
        done = finish(env_dir, layout.manifest_file(number), infos.values(), facts.member_entries)
        built: dict[str, Any] = {"from": "nothing", "why": refused[0]}
    else:
        done, built = _finish_clone(pre, facts, (layout, source, number), cloned, (wheels, infos))
    took = round(time.monotonic() - started, 3)
    return Prepared(number, source, env_dir, done, wheels, infos, hashes, export, interpreter, built, took)


def _finish_clone(
    pre: Preflight,
    facts: _Staged,
    where: tuple[Layout, int, int],
    cloned: Clone,
    members: tuple[dict[str, Path], dict[str, WheelInfo]],
) -> tuple[Finished, dict[str, Any]]:
    """The members whose content moved since the live generation, then the smoke check and the seal."""
    (layout, source, number), (wheels, infos) = where, members
    env_dir = layout.gen_dir(number)
    before = {m.get("name"): m.get("sha256") for m in pre.live.members}
    moved = {n for n, h in facts.member_hashes.items() if before.get(n) != h}
    changed = sorted((moved | cloned.reinstall) & set(wheels))
    if changed:
        with members_step(changed):
            engine.install_wheels(pre.relock_stage, env_dir, [wheels[n] for n in changed], reinstall=True)
    delta.drop_stale_bytecode(env_dir, cloned)
    done = finish(
        env_dir,
        layout.manifest_file(number),
        infos.values(),
        facts.member_entries,
        reuse=cloned.reused,
    )
    return done, cloned.built(source, changed, lock_synced=True)


def _remove(layout: Layout, number: int) -> None:
    """A prepared generation that will not go live (it has no record: nothing else refers to it)."""
    if layout.state_file(number).exists():
        return  # recorded: not ours (a deploy meanwhile swept ours and built its own under this number)
    layout.remove_generation(number)


def discard(session: Session, prepared: Prepared) -> None:
    """Remove the prepared generation now, when --env's lock is free (else the holder's sweep does)."""
    layout = Layout.for_env(session.env)
    with contextlib.suppress(BusyError), claim(layout, wait=False):
        _remove(layout, prepared.number)


def remove_test_envs(
    session: Session, prepared: Prepared, envs: Sequence[Path], linked: Mapping[str, int]
) -> None:
    """Once ``prepared`` is live: remove the test environments (hard links to its files), explaining the
    ctimes that their links (``linked``) and unlinks moved in it, so that the next deploy's clone of it
    links without hashing (generations.identity). Skipped (the files are then hashed, nothing else)
    when another generation is live or --env's lock is held."""
    layout = Layout.for_env(session.env)
    lock = locking.hold(layout.lock_file, wait=False, what=f"environment {layout.env}")
    with contextlib.suppress(BusyError, OSError), lock:
        if layout.current_number() == prepared.number:
            identity.remove_clones(layout, envs, prepared.number, linked)


def intact(prepared: Prepared) -> str | None:
    """None when every sealed file of the prepared generation is still the inode, size and mtime sealed
    (the tests ran on hard links to them; a write in place would show here); else the first that is not.
    The ctime is not compared: the test environment's links moved it."""
    manifest = prepared.finished.manifest
    for path, sealed in {**manifest.files, **manifest.bytecode}.items():
        try:
            st = os.lstat(prepared.directory / path)
        except FileNotFoundError:
            return f"{path}: missing"
        if (st.st_ino, st.st_size, st.st_mtime_ns) != (sealed.ino, sealed.size, sealed.mtime_ns):
            return f"{path}: changed since it was sealed"
    return None


def _record(prepared: Prepared, facts: ProjectFacts, opts: plan.Options, tested_in: Path) -> GenerationState:
    """The record a deploy of the committed project writes (deploy/populate.py's), with ``built`` naming
    the environment the tests ran in."""
    finished, infos, wheels = prepared.finished, prepared.infos, prepared.wheels
    return GenerationState(
        number=prepared.number,
        kind="deploy",
        created=now_iso(),
        packages=finished.packages,
        project=str(facts.workspace.root),
        # The commit of the lock update just committed, as a deploy of it records (receipt, SBOM).
        git_commit=gitcmd.commit_of(facts.workspace.root),
        lock_sha256=facts.lock_sha256,
        export_sha256=prepared.export_sha256,
        inputs_sha256=facts.inputs,
        lock_inputs_sha256=facts.lock_inputs,
        effective_sha256=plan.effective_digest(
            export_sha256=prepared.export_sha256,
            member_hashes=facts.member_hashes,
            interpreter=prepared.interpreter,
            options=opts,
        ),
        members=[
            {
                **m.to_json(),
                "sha256": facts.member_hashes.get(m.name),
                "files_sha256": facts.file_hashes.get(m.name),
                "wheel": str(wheels[m.name]) if m.name in wheels else None,
                "top_level": list(infos[m.name].top_level) if m.name in infos else [],
                "scripts": list(infos[m.name].scripts) if m.name in infos else [],
            }
            for m in facts.members
        ],
        interpreter=interpreter_record(
            prepared.interpreter,
            finished.report,
            request=opts.python,
            python_version_file=facts.python_version_file,
            requires_python=facts.requires_python,
        ),
        options=opts.to_json(),
        uv_version=uv_version(),
        uv_cache_dir=engine.cache_dir(),
        uv_cache_why=uv_cache().why,
        manifest_sha256=finished.manifest_sha256,
        venvkeeper_version=__version__,
        duration_s=prepared.duration_s,
        built={**prepared.built, "tested_in": str(tested_in)},
    )


def _committed_facts(session: Session, pre: Preflight) -> tuple[ProjectFacts, plan.Options]:
    workspace = load_workspace(session.root)
    opts = options(pre, workspace)
    lock = parse_lock(workspace)
    members = load_lock_members(workspace, lock)
    lock_sha = hashlib.sha256(workspace.lock_bytes).hexdigest()
    return ProjectFacts(workspace, members, opts, lock_sha, lock.get("requires-python")), opts


def _usable(layout: Layout, target: Target, prepared: Prepared) -> bool:
    """The prepared generation can still go live: the generation it was cloned from is live and
    healthy, and it is still there, unrecorded, with the manifest it was sealed with, its files intact."""
    manifest = layout.manifest_file(prepared.number)
    try:
        sealed = hashlib.sha256(manifest.read_bytes()).hexdigest() == prepared.finished.manifest_sha256
    except OSError:
        return False
    return (
        target.live_number == prepared.source
        and target.healthy
        and sealed
        and not layout.state_file(prepared.number).exists()
        and intact(prepared) is None
    )


def switch(session: Session, pre: Preflight, prepared: Prepared, tested_in: Path) -> DeployResult | None:
    """Record the prepared generation as the committed project's deploy and switch --env to it, with the
    post-deploy hooks (switching back if one fails); None when it can no longer go live (the caller
    deploys instead). Run once the lock is committed: the record is of the committed project."""
    started = time.monotonic()
    facts, opts = _committed_facts(session, pre)
    if facts.member_hashes != prepared.member_hashes:
        return None  # built from other member contents than the committed ones (a version from git)
    layout, workspace = Layout.for_env(session.env), facts.workspace
    keep = workspace.config.keep if workspace.config.keep is not None else DEFAULT_KEEP
    # --env's lock, without claim's sweep: that would remove the generation, unrecorded until now.
    with locking.hold(layout.lock_file, wait=True, what=f"environment {layout.env}"):
        target = target_for(layout, opts)
        if not _usable(layout, target, prepared):
            _remove(layout, prepared.number)
            return None
        state = _record(prepared, facts, opts, tested_in)
        # The SBOM of the committed lock (its commit time): written with the record, as a deploy does.
        state.sbom_sha256 = sbomgen.write_generation(
            prepared.directory,
            layout.manifest_file(prepared.number),
            prepared.finished.manifest,
            state.to_json(),
            parse_lock(workspace),
            workspace.root,
        )
        hooks, root = workspace.config.hooks, workspace.root
        cwd = (root / hooks.directory).resolve() if hooks.directory else root

        def post_deploy(number: int, undo: Undo) -> list[Any]:
            if not hooks.post_deploy:
                return []
            return run_post_deploy(hooks.post_deploy, cwd, hooks.timeout, layout, number, undo)

        stamps.clear_stamp(layout.home)  # it names the generation being replaced
        switched = switch_prepared(layout, target, keep, prepared.number, state, post_deploy)
        wheelcache.prune(layout)
    return switched_result(
        "deploy", layout, switched, "the generation the tests ran against was switched to", started
    )
