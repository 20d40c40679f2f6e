"""What a deploy will do, decided as a value: nothing (and why), or what to build, reuse and install.

A pure function of facts gathered beforehand: the project's fingerprints (:class:`Project`), what
stands at --env now (:class:`Live`), the options, and what uv and the wheel cache answered
(:class:`Found`). Nothing here touches the filesystem, runs a program or reads the clock;
:mod:`venvkeeper.deploy.converge` gathers the facts, asks :func:`questions` which of them it must ask uv
for, calls :func:`decide`, and carries the :class:`Decision` out.

Change is detected at three levels, cheapest first:

1. the inputs digest (lock, pyprojects, ``.python-version``, member contents, options) equals the live
   record's: unchanged, and uv is never run;
2. the effective digest (what the selected groups install, the members, the interpreter) equals the
   live record's: the inputs moved but what they install did not;
3. otherwise a new generation (or the environment in place) is built, each member's wheel reused from
   the wheel cache when one for this exact content and interpreter is there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from venvkeeper.core.errors import ConfigError
from venvkeeper.generations.layout import GenerationState
from venvkeeper.generations.results import HOOKS_SKIPPED
from venvkeeper.generations.transaction import refuse_in_place_on_generation
from venvkeeper.project import plan

__all__ = [
    "Decision",
    "Found",
    "Live",
    "Project",
    "Questions",
    "Repair",
    "decide",
    "questions",
    "settled_by_inputs",
]

UNCHANGED_INPUTS = "nothing changed since the live environment was built"
UNCHANGED_EFFECTIVE = "the inputs moved but what they install did not (no install ran)"
NOTHING_TO_REPAIR = "verify found nothing to repair; "


@dataclass(frozen=True)
class Project:
    """The project's side: its fingerprints (:class:`venvkeeper.project.facts.ProjectFacts`)."""

    pyproject: str  # the root pyproject.toml, named when a group is unknown
    inputs: str  # everything a deploy reads (plan.inputs_digest)
    lock_inputs: str  # what decides whether the lock is current (lock and pyprojects)
    python_version_file: str | None
    member_hashes: Mapping[str, str]  # package members by content
    defined_groups: tuple[str, ...] | None = None  # None: the lock was not read (unchanged inputs)
    hooks: tuple[str, ...] = ()  # [tool.venvkeeper.hooks] post-deploy
    requires_python: str | None = None  # the lock's requires-python, when known


@dataclass(frozen=True)
class Repair:
    """``--repair``: what verify found in the live environment (see :mod:`venvkeeper.deploy.repair`)."""

    findings: int  # any at all forces a rebuild
    affected: tuple[str, ...] = ()  # distributions with findings (reinstalled when --in-place)
    poisoned: tuple[str, ...] = ()  # of those, the ones whose uv cache entries were dropped
    sbom: str = ""  # the generation's SBOM rewritten as its record names it (no rebuild for it), as said
    # Each finding as verify names it ("modified lib/.../x.py"): what ``--check --repair`` tells.
    named: tuple[str, ...] = ()


@dataclass(frozen=True)
class Live:
    """What stands at --env now (:class:`venvkeeper.generations.transaction.Target`, with two more facts)."""

    env: str  # --env, as given (absolute)
    kind: str  # "missing", "empty", "venv" (a plain venv to adopt), "generation", or "in-place"
    env_kind: str  # Layout.env_kind(): what --env itself is
    number: int | None  # the live generation
    record: GenerationState | None  # its record (or the in-place record)
    healthy: bool  # runs, on the interpreter it was built on, where it was built
    interpreter_intact: bool  # the record's interpreter is still the same file (by stat)
    moved_from: str | None = None  # built there and moved since
    repair: Repair | None = None  # --repair, when there was a live environment to verify

    @property
    def intact(self) -> bool:
        """Healthy, and verify (when asked) found nothing: only then can it be left as it is."""
        return self.healthy and not (self.repair is not None and self.repair.findings)


@dataclass(frozen=True)
class Questions:
    """What converge must find out before :func:`decide` can answer (uv runs only for what is None/True)."""

    interpreter: str | None  # the live record's interpreter still holds; None: ask uv (python find)
    check_lock: bool  # run uv's lock check (its verdict gates the switch and any "unchanged")
    export_sha256: str | None  # the live record's export digest still holds; None: ask uv (export)


@dataclass(frozen=True)
class Found:
    """What converge found out, as :class:`Questions` asked."""

    python: str  # the interpreter for this deploy
    interpreter: Mapping[str, Any]  # its identity: path, realpath, mtime_ns, size
    export_sha256: str  # what the lock installs for the selected groups
    cached: frozenset[str] = frozenset()  # members whose wheel for this content and interpreter is cached
    export_text: str | None = None  # uv's export itself, when it was asked (a clone reads what it drops)


@dataclass(frozen=True)
class Decision:
    """What a deploy does. Unchanged: ``changed`` is False and ``reason`` says why, as printed."""

    changed: bool
    reason: str
    in_place: bool
    generation: int | None = None  # the live generation (kept when unchanged, replaced otherwise)
    python: str | None = None  # the interpreter (None: unchanged inputs, none was looked up)
    interpreter_reused: bool = False  # the live record's, not uv's discovery
    check_lock: bool = False  # uv's lock check runs, and its verdict gates the answer
    export_sha256: str | None = None
    effective_sha256: str | None = None
    groups: tuple[str, ...] = ()  # installed with the runtime dependencies (the selection rule)
    rebuild: tuple[str, ...] = ()  # members built from the staging copy
    reuse: tuple[str, ...] = ()  # members installed from the wheel cache
    reinstall: tuple[str, ...] = ()  # distributions installed afresh (--repair --in-place, moved in place)
    refresh_venv: bool = False  # the venv's own files written afresh (moved in place)
    adopt: bool = False  # the plain venv at --env becomes a kept generation
    # A new generation cloned from the live one (generations.clone), then only the delta installed:
    clone_from: int | None = None  # the live generation, when it can be the clone's source
    delta_members: tuple[str, ...] = ()  # members whose content differs from the live generation's
    sync_lock: bool = True  # what the lock installs differs from the live generation (uv sync runs)
    hooks: tuple[str, ...] = ()  # post-deploy hooks that will run, in order
    rollback_on_hook_failure: bool = True  # a failed hook switches back (never in place)
    # What the new environment replaces, per the live record: the package diff against it is known once
    # uv has installed (DeployResult.packages); what a lock installs is uv's to resolve, not guessed here.
    previous_packages: Mapping[str, str] = field(default_factory=dict)


def settled_by_inputs(project: Project, live: Live) -> bool:
    """Level one: nothing the deploy reads changed since the intact live environment was built."""
    return live.record is not None and live.intact and live.record.inputs_sha256 == project.inputs


def _check_groups(project: Project, options: plan.Options) -> None:
    defined = project.defined_groups or ()
    unknown = plan.undefined_groups(options.groups, defined)
    if unknown:
        raise ConfigError(
            f"unknown dependency group '{unknown[0]}': {project.pyproject} and its members "
            f"define {', '.join(defined) or 'no groups'}",
            hint="check the --group name (or [tool.venvkeeper] groups), or add the group and run `uv lock`",
        )


def questions(project: Project, live: Live, options: plan.Options) -> Questions:
    """What must be asked of uv (needs the lock read: an unknown group is refused here, before any work)."""
    if project.defined_groups is None:
        raise ValueError("questions() needs the groups the lock defines")
    _check_groups(project, options)
    record = live.record
    # Inputs that decide the lock's validity unchanged since the live generation: it is still current.
    lock_known_good = record is not None and record.lock_inputs_sha256 == project.lock_inputs
    interpreter = None
    if (
        record is not None
        and (lock_known_good or _same_requires_python(project, record))
        and record.interpreter.get("request") == options.python
        and record.interpreter.get("python_version_file") == project.python_version_file
        and live.interpreter_intact
    ):
        interpreter = str(record.interpreter["path"])
    same_groups = record is not None and record.options.get("groups") == options.to_json()["groups"]
    export = record.export_sha256 if lock_known_good and same_groups and record is not None else None
    return Questions(interpreter, not lock_known_good, export or None)


def _same_requires_python(project: Project, record: GenerationState) -> bool:
    """The lock changed (a package bumped) but not the Python range uv resolved it for: the interpreter
    uv would pick is the one it picked (``uv python find`` costs 0.2 s with many interpreters)."""
    recorded = record.interpreter.get("requires_python")
    return project.requires_python is not None and recorded == project.requires_python


def _moved_note(live: Live) -> str:
    if live.moved_from is None:
        return ""
    return f"the environment was built at {live.moved_from} and moved since (its scripts name that path); "


def _unchanged(live: Live, decision: Decision) -> Decision:
    if live.repair is not None and not live.repair.findings:
        done = f"{live.repair.sbom}; verify found nothing else to repair; " if live.repair.sbom else ""
        return replace(decision, reason=(done or NOTHING_TO_REPAIR) + decision.reason)
    return decision


def decide(
    project: Project,
    live: Live,
    options: plan.Options,
    found: Found | None = None,
    *,
    rollback: bool = True,
    run_hooks: bool = True,
) -> Decision:
    """The decision; ``found`` may be None only when the inputs alone settle it (:func:`settled_by_inputs`).
    ``run_hooks`` False (``--no-hooks``): a change runs none of the project's post-deploy hooks, and
    its reason says so when the project has any.

    Raises ConfigError for a request that cannot be carried out (an unknown group, --in-place on a
    generation).
    """
    if options.in_place:
        refuse_in_place_on_generation(live.env, live.env_kind, "deploy")
    if settled_by_inputs(project, live):
        return _unchanged(live, Decision(False, UNCHANGED_INPUTS, options.in_place, generation=live.number))
    if found is None:
        raise ValueError("decide() needs what uv found unless the inputs alone settle it")
    asked = questions(project, live, options)
    effective = plan.effective_digest(
        export_sha256=found.export_sha256,
        member_hashes=project.member_hashes,
        interpreter=found.interpreter,
        options=options,
    )
    probed = Decision(
        False,
        UNCHANGED_EFFECTIVE,
        options.in_place,
        generation=live.number,
        python=found.python,
        interpreter_reused=asked.interpreter is not None,
        check_lock=asked.check_lock,
        export_sha256=found.export_sha256,
        effective_sha256=effective,
    )
    record = live.record
    if record is not None and live.intact and record.effective_sha256 == effective:
        return _unchanged(live, probed)
    return replace(
        probed,
        changed=True,
        reason=_moved_note(live)
        + ("converged in place" if options.in_place else "new generation built")
        + (f"; {HOOKS_SKIPPED}" if project.hooks and not run_hooks else ""),
        groups=tuple(options.groups),
        rebuild=tuple(members_to_build(project.member_hashes, found.cached)),
        reuse=tuple(sorted(set(project.member_hashes) & found.cached)),
        reinstall=_reinstall(live, options),
        refresh_venv=options.in_place and live.moved_from is not None and record is not None,
        adopt=not options.in_place and live.kind == "venv",
        **_clone(project, live, options, found),
        hooks=project.hooks if run_hooks else (),
        rollback_on_hook_failure=rollback and not options.in_place,
        previous_packages=dict(record.packages) if record is not None else {},
    )


def _clone(project: Project, live: Live, options: plan.Options, found: Found) -> dict[str, Any]:
    """Whether the new generation starts as a clone of the live one, and the delta it then needs.

    Only a healthy generation built here, on this very interpreter (the venv's own files and
    site-packages' path depend on it) and with nothing found to repair: anything else is built from
    nothing, as before.
    """
    record = live.record
    identity = ("realpath", "mtime_ns", "size")
    if (
        options.in_place
        or record is None
        or live.kind != "generation"
        or not live.intact
        or live.moved_from is not None
        or any(record.interpreter.get(k) != found.interpreter.get(k) for k in identity)
    ):
        return {}
    before = {m.get("name"): m.get("sha256") for m in record.members if m.get("package", True)}
    return {
        "clone_from": live.number,
        "delta_members": tuple(sorted(n for n, h in project.member_hashes.items() if before.get(n) != h)),
        # The export digest may be the record's own (questions() reuses it while the lock and groups
        # stand), so options that change how uv installs (the selection rule) also mean a sync; and
        # a member gone from the workspace is not in the export at all (--no-emit-workspace): the
        # sync's clean-up removes what neither the export nor the members name.
        "sync_lock": record.export_sha256 != found.export_sha256
        or record.options != options.to_json()
        or bool(set(before) - set(project.member_hashes)),
    }


def members_to_build(member_hashes: Mapping[str, str], cached: frozenset[str]) -> list[str]:
    """Members whose wheel for this exact content is not in the wheel cache yet."""
    return sorted(name for name in member_hashes if name not in cached)


def _reinstall(live: Live, options: plan.Options) -> tuple[str, ...]:
    if not options.in_place:
        return ()  # a new generation is built from nothing
    wanted: Sequence[str] = live.repair.affected if live.repair is not None else ()
    if live.moved_from is not None and live.record is not None:
        # Moved in place: uv leaves installed packages alone, so every script would keep naming the
        # old path. Every package is reinstalled (and the venv's own files written afresh).
        wanted = [*wanted, *live.record.packages]
    return tuple(sorted(set(wanted)))
