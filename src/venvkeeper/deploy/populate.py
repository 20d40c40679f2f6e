"""Populate one environment as a :class:`~venvkeeper.deploy.decision.Decision` says, with the engine's
steps: the lock's packages and the members' wheels (reused from the wheel cache or built from the staging
copy, :mod:`venvkeeper.generations.wheelcache`), the shared finish (smoke check, seal), then the record
the next deploy decides from.

A new generation starts as a hard-link clone of the live one when the decision allows it
(:mod:`venvkeeper.generations.clone`); only the delta is then installed: the members whose content
changed, the lock's changes (``uv sync --inexact``, then what the lock dropped is removed), and the
distributions of any file the clone refused. A refused clone is built from nothing, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper import __version__
from venvkeeper.core import progress
from venvkeeper.core.lazy import lazy
from venvkeeper.deploy.decision import Decision, Found
from venvkeeper.gateways import git as gitcmd
from venvkeeper.gateways.uv import uv_cache, uv_version
from venvkeeper.generations import delta, engine, wheelcache
from venvkeeper.generations.build import (
    both,
    finish,
    install_locked,
    installing,
    interpreter_record,
    members_step,
)
from venvkeeper.generations.clone import Clone, CloneRefusedError
from venvkeeper.generations.layout import GenerationState, Layout, now_iso
from venvkeeper.generations.manifest import Manifest
from venvkeeper.generations.wheels import WheelInfo, inspect_wheel
from venvkeeper.project import plan
from venvkeeper.project.facts import ProjectFacts
from venvkeeper.project.workspace import parse_lock
from venvkeeper.sbom import generation as sbomgen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.generations import dropped as lockdrop
else:
    lockdrop = lazy("venvkeeper.generations.dropped")  # packaging's markers: only when the lock changed

__all__ = ["Build", "populate"]


@dataclass(frozen=True)
class Build:
    """Everything populating needs, gathered by converge."""

    decision: Decision
    found: Found
    facts: ProjectFacts
    options: plan.Options
    layout: Layout
    stage: Path  # the staging copy's workspace root
    in_workspace: bool  # uv builds a member by --package name (else by path)
    gate: Callable[[], None]  # raises if uv found the lock out of date
    started: float


def populate(build: Build, env_dir: Path, number: int, manifest_path: Path) -> GenerationState:
    """Install the lock and the members into ``env_dir``, smoke-check it, seal it, and describe it."""
    decision, facts = build.decision, build.facts
    python = Path(decision.python or build.found.python)
    sbomgen.preload()  # cyclonedx-python-lib loads while uv installs: the SBOM is written after the seal
    why = "the live generation cannot be its source (none, in place, moved, damaged or another interpreter)"
    if decision.clone_from is not None:
        try:
            return _populate_clone(build, decision.clone_from, (env_dir, number, manifest_path), python)
        except CloneRefusedError as exc:
            why = f"the clone of generation {decision.clone_from} was refused: {exc}"
            delta.empty(env_dir)  # what the clone and its delta left: built from nothing instead
    if decision.refresh_venv:
        engine.create_venv(env_dir, str(python), allow_existing=True)
    wheels = install_locked(
        build.stage,
        env_dir,
        python,
        decision.groups,
        lambda: _member_wheels(build, python),
        reinstall=decision.reinstall,
    )
    infos = {name: inspect_wheel(path) for name, path in wheels.items()}
    done = finish(env_dir, manifest_path, infos.values(), facts.member_entries)
    build.gate()
    state = _record(build, number, done.packages, wheels, infos, done.report, done.manifest_sha256)
    state.built = {"from": "nothing", "why": why}
    _write_sbom(build, env_dir, manifest_path, done.manifest, state)
    return state


def _member_wheels(build: Build, python: Path) -> dict[str, Path]:
    facts = build.facts
    members = {
        m.name: (m.path, facts.member_hashes[m.name]) for m in facts.members if m.name in facts.member_hashes
    }
    return wheelcache.member_wheels(
        build.layout,
        build.stage,
        python,
        build.found.interpreter,
        members,
        build.decision.rebuild,
        in_workspace=build.in_workspace,
    )


def _populate_clone(
    build: Build, source: int, where: tuple[Path, int, Path], python: Path
) -> GenerationState:
    """The clone of generation ``source``, then the delta: see the module's docstring."""
    decision, (env_dir, number, manifest_path) = build.decision, where
    members = set(build.facts.member_hashes)

    def clone_and_sync() -> Clone:
        cloned = delta.start(build.layout, source, env_dir)
        third = sorted(cloned.reinstall - members)
        # Members too: uv installs a wheel by linking what it unpacked into its cache, so an in-place
        # edit of a member's file reached that entry, and the same wheel would bring it back.
        engine.clean_cache(sorted(cloned.poisoned))
        if decision.sync_lock or third:
            with installing(env_dir, "installing the lock's changes"):
                engine.sync_dependencies(build.stage, env_dir, python, decision.groups, third, inexact=True)
        if decision.sync_lock:
            record = build.layout.read_state(source)
            markers = record.interpreter.get("markers", {}) if record is not None else {}
            requirements = build.found.export_text or engine.export_requirements(
                build.stage, decision.groups, python
            )
            dropped = lockdrop.extraneous(env_dir, requirements, markers, members)
            if dropped is None:
                raise CloneRefusedError("uv's export names a dependency by path, not by name")
            if dropped:
                progress.call(
                    f"removing {', '.join(dropped)}", engine.uninstall, build.stage, env_dir, dropped
                )
        return cloned

    cloned, wheels = both(clone_and_sync, lambda: _member_wheels(build, python))
    changed = sorted((set(decision.delta_members) | cloned.reinstall) & set(wheels))
    if changed:
        with members_step(changed):
            engine.install_wheels(build.stage, env_dir, [wheels[n] for n in changed], reinstall=True)
    delta.drop_stale_bytecode(env_dir, cloned)
    infos = {name: inspect_wheel(path) for name, path in wheels.items()}
    done = finish(
        env_dir,
        manifest_path,
        infos.values(),
        build.facts.member_entries,
        reuse=cloned.reused,
    )
    build.gate()
    state = _record(build, number, done.packages, wheels, infos, done.report, done.manifest_sha256)
    state.built = cloned.built(source, changed, decision.sync_lock)
    _write_sbom(build, env_dir, manifest_path, done.manifest, state)
    return state


def _write_sbom(
    build: Build, env_dir: Path, manifest_path: Path, manifest: Manifest, state: GenerationState
) -> None:
    """The generation's SBOM beside its manifest, from the lock as deployed; its hash in the record."""
    workspace = build.facts.workspace
    state.sbom_sha256 = sbomgen.write_generation(
        env_dir, manifest_path, manifest, state.to_json(), parse_lock(workspace), workspace.root
    )


def _record(
    build: Build,
    number: int,
    packages: dict[str, str],
    wheels: dict[str, Path],
    infos: dict[str, WheelInfo],
    report: dict[str, Any],
    manifest_sha: str,
) -> GenerationState:
    facts, decision = build.facts, build.decision
    return GenerationState(
        number=number,
        kind="deploy",
        created=now_iso(),
        packages=packages,
        project=str(facts.workspace.root),
        lock_sha256=facts.lock_sha256,
        export_sha256=decision.export_sha256,
        inputs_sha256=facts.inputs,
        lock_inputs_sha256=facts.lock_inputs,
        effective_sha256=decision.effective_sha256,
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
            build.found.interpreter,
            report,
            request=build.options.python,
            python_version_file=facts.python_version_file,
            requires_python=facts.requires_python,
        ),
        options=build.options.to_json(),
        uv_version=uv_version(),
        uv_cache_dir=engine.cache_dir(),
        uv_cache_why=uv_cache().why,
        manifest_sha256=manifest_sha,
        venvkeeper_version=__version__,
        duration_s=round(time.monotonic() - build.started, 3),
        git_commit=gitcmd.commit_of(facts.workspace.root),
    )
