"""Deploy's decision, table-driven: facts in, the whole Decision out. No uv, no subprocess, no files."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from venvkeeper.core.errors import ConfigError
from venvkeeper.deploy.decision import (
    Decision,
    Found,
    Live,
    Project,
    Questions,
    Repair,
    decide,
    questions,
)
from venvkeeper.generations.layout import GenerationState
from venvkeeper.project import plan

ENV = "/srv/app/.venv"
PYTHON = "/usr/bin/python3.12"
INTERPRETER = {"path": PYTHON, "realpath": PYTHON, "mtime_ns": 1700000000, "size": 6000}
PACKAGES = {"core": "0.1.0", "tinydb": "1.2.0", "tinyweb": "1.0.0", "webapp": "0.1.0"}
HOOKS = ("alembic upgrade head", "webapp check")

PROJECT = Project(
    pyproject="/src/app/pyproject.toml",
    inputs="inputs-1",
    lock_inputs="lock-inputs-1",
    python_version_file=None,
    member_hashes={"core": "core-1", "webapp": "webapp-1"},
    defined_groups=("dev", "docs"),
)
FOUND = Found(PYTHON, INTERPRETER, "export-1", frozenset())
RUNTIME = plan.Options()
IN_PLACE = plan.Options(in_place=True)


def effective(
    found: Found = FOUND,
    project: Project = PROJECT,
    options: plan.Options = RUNTIME,
    export: str | None = None,
) -> str:
    return plan.effective_digest(
        export_sha256=export or found.export_sha256,
        member_hashes=project.member_hashes,
        interpreter=found.interpreter,
        options=options,
    )


def record(options: plan.Options = RUNTIME, **changes: Any) -> GenerationState:
    """The record a deploy of PROJECT with FOUND wrote."""
    state = GenerationState(
        number=0 if options.in_place else 1,
        kind="deploy",
        created="2026-12-01T00:00:00Z",
        packages=dict(PACKAGES),
        project="/src/app",
        lock_sha256="lock-1",
        export_sha256="export-1",
        inputs_sha256=PROJECT.inputs,
        lock_inputs_sha256=PROJECT.lock_inputs,
        effective_sha256=effective(options=options),
        interpreter={**INTERPRETER, "request": options.python, "python_version_file": None},
        options=options.to_json(),
        members=[{"name": name, "sha256": digest} for name, digest in PROJECT.member_hashes.items()],
    )
    return replace(state, **changes)


LIVE = Live(
    env=ENV,
    kind="generation",
    env_kind="generation",
    number=1,
    record=record(),
    healthy=True,
    interpreter_intact=True,
)
LIVE_IN_PLACE = replace(LIVE, kind="in-place", env_kind="venv", number=None, record=record(IN_PLACE))
NOTHING = Live(
    env=ENV,
    kind="missing",
    env_kind="missing",
    number=None,
    record=None,
    healthy=False,
    interpreter_intact=False,
)


def built(**fields: Any) -> Decision:
    """A new generation over LIVE, as a deploy that reuses every record answer decides it."""
    base = Decision(
        True,
        "new generation built",
        False,
        generation=1,
        python=PYTHON,
        interpreter_reused=True,
        check_lock=False,
        export_sha256="export-1",
        effective_sha256=effective(),
        rebuild=("core", "webapp"),
        previous_packages=PACKAGES,
    )
    return replace(base, **fields)


def kept(reason: str, **fields: Any) -> Decision:
    return replace(Decision(False, reason, False, generation=1), **fields)


INPUTS_SAME = "nothing changed since the live environment was built"
EFFECTIVE_SAME = "the inputs moved but what they install did not (no install ran)"
PYTHON_313 = {"path": "/usr/bin/python3.13", "realpath": "/usr/bin/python3.13", "mtime_ns": 5, "size": 7000}
UPGRADED = {**INTERPRETER, "mtime_ns": 1800000000}  # the same path, a new file (a distribution upgrade)
ELSEWHERE = {"path": "/opt/py/bin/python3.12", "realpath": "/opt/py/bin/python3.12", "mtime_ns": 9, "size": 1}
EDITED = replace(PROJECT, inputs="inputs-2", member_hashes={"core": "core-1", "webapp": "webapp-2"})
RELOCKED = replace(PROJECT, inputs="inputs-2", lock_inputs="lock-inputs-2")
LIVE_311 = replace(
    LIVE, record=record(interpreter={**INTERPRETER, "request": None, "requires_python": ">=3.11"})
)
MOVED_NOTE = "the environment was built at /old/app/.venv and moved since (its scripts name that path); "


@dataclass(frozen=True)
class Case:
    id: str
    live: Live
    expected: Decision
    project: Project = PROJECT
    options: plan.Options = RUNTIME
    found: Found | None = FOUND
    rollback: bool = True
    run_hooks: bool = True


CASES = [
    Case(
        "first deploy: nothing at --env, every member built, uv checks the lock",
        NOTHING,
        built(generation=None, interpreter_reused=False, check_lock=True, previous_packages={}),
    ),
    Case("unchanged by its inputs: uv is not asked", LIVE, kept(INPUTS_SAME), found=None),
    Case(
        "unchanged by the effective digest: a lock edit outside the selected groups",
        LIVE,
        kept(
            EFFECTIVE_SAME,
            python=PYTHON,
            check_lock=True,
            export_sha256="export-1",
            effective_sha256=effective(),
        ),
        project=RELOCKED,
    ),
    Case(
        "lock changed what the groups install: rebuilt, every member's wheel reused",
        LIVE,
        built(
            check_lock=True,
            interpreter_reused=False,
            export_sha256="export-2",
            effective_sha256=effective(export="export-2"),
            rebuild=(),
            reuse=("core", "webapp"),
            clone_from=1,  # the live generation is cloned; uv syncs the lock's changes into it
            sync_lock=True,
        ),
        project=RELOCKED,
        found=replace(FOUND, export_sha256="export-2", cached=frozenset({"core", "webapp"})),
    ),
    Case(
        "a package bumped, requires-python as recorded: the live interpreter reused, uv checks the lock",
        LIVE_311,
        built(
            check_lock=True,
            export_sha256="export-2",
            effective_sha256=effective(export="export-2"),
            rebuild=(),
            reuse=("core", "webapp"),
            clone_from=1,
            sync_lock=True,
        ),
        project=replace(RELOCKED, requires_python=">=3.11"),
        found=replace(FOUND, export_sha256="export-2", cached=frozenset({"core", "webapp"})),
    ),
    Case(
        "a package bumped and requires-python moved: uv picks the interpreter again",
        LIVE_311,
        built(
            check_lock=True,
            interpreter_reused=False,
            export_sha256="export-2",
            effective_sha256=effective(export="export-2"),
            rebuild=(),
            reuse=("core", "webapp"),
            clone_from=1,
            sync_lock=True,
        ),
        project=replace(RELOCKED, requires_python=">=3.12"),
        found=replace(FOUND, export_sha256="export-2", cached=frozenset({"core", "webapp"})),
    ),
    Case(
        "a member removed from the workspace: the clone's sync removes it (the export never names members)",
        replace(
            LIVE,
            record=record(
                members=[*record().members, {"name": "gone", "sha256": "gone-1"}],
                effective_sha256="effective with gone",
            ),
        ),
        built(rebuild=(), reuse=("core", "webapp"), clone_from=1, sync_lock=True),
        project=replace(PROJECT, inputs="inputs-2"),
        found=replace(FOUND, cached=frozenset({"core", "webapp"})),
    ),
    Case(
        "one member edited: it is rebuilt, the other reused from the wheel cache",
        LIVE,
        built(
            effective_sha256=effective(project=EDITED),
            rebuild=("webapp",),
            reuse=("core",),
            clone_from=1,  # cloned, and only webapp installed into it: the lock installs the same
            delta_members=("webapp",),
            sync_lock=False,
        ),
        project=EDITED,
        found=replace(FOUND, cached=frozenset({"core"})),
    ),
    Case(
        "live environment broken (bin/python gone): rebuilt from cached wheels on the recorded interpreter",
        replace(LIVE, healthy=False),
        built(rebuild=(), reuse=("core", "webapp")),
        found=replace(FOUND, cached=frozenset({"core", "webapp"})),
    ),
    Case(
        "interpreter upgraded in place (same path, new file): uv asked, rebuilt",
        replace(LIVE, healthy=False, interpreter_intact=False),
        built(interpreter_reused=False, effective_sha256=effective(replace(FOUND, interpreter=UPGRADED))),
        found=replace(FOUND, interpreter=UPGRADED),
    ),
    Case(
        "interpreter removed: uv finds another, nothing cached for it",
        replace(LIVE, healthy=False, interpreter_intact=False),
        built(
            python=ELSEWHERE["path"],
            interpreter_reused=False,
            effective_sha256=effective(replace(FOUND, python=ELSEWHERE["path"], interpreter=ELSEWHERE)),
        ),
        found=replace(FOUND, python=ELSEWHERE["path"], interpreter=ELSEWHERE),
    ),
    Case(
        "--python changed: uv asked for the interpreter, the export digest still holds",
        LIVE,
        built(
            python=PYTHON_313["path"],
            interpreter_reused=False,
            effective_sha256=effective(
                replace(FOUND, python=PYTHON_313["path"], interpreter=PYTHON_313),
                options=plan.Options(python="3.13"),
            ),
        ),
        project=replace(PROJECT, inputs="inputs-3.13"),
        options=plan.Options(python="3.13"),
        found=replace(FOUND, python=PYTHON_313["path"], interpreter=PYTHON_313),
    ),
    Case(
        ".python-version changed: uv asked, found the same interpreter, so nothing to install",
        LIVE,
        kept(EFFECTIVE_SAME, python=PYTHON, export_sha256="export-1", effective_sha256=effective()),
        project=replace(PROJECT, inputs="inputs-pin", python_version_file="3.12"),
    ),
    Case(
        "groups changed: installed with the runtime set",
        LIVE,
        built(
            export_sha256="export-docs",
            effective_sha256=effective(options=plan.Options(("docs",)), export="export-docs"),
            groups=("docs",),
            clone_from=1,
            sync_lock=True,  # uv adds the group's packages to the clone
        ),
        project=replace(PROJECT, inputs="inputs-docs"),
        options=plan.Options(("docs",)),
        found=replace(FOUND, export_sha256="export-docs"),
    ),
    Case(
        "in place, first time: --env converged itself, a failed hook cannot roll back",
        replace(NOTHING, kind="in-place"),
        built(
            reason="converged in place",
            in_place=True,
            generation=None,
            interpreter_reused=False,
            check_lock=True,
            effective_sha256=effective(options=IN_PLACE),
            rollback_on_hook_failure=False,
            previous_packages={},
        ),
        options=IN_PLACE,
    ),
    Case(
        "in place, unchanged by its inputs",
        LIVE_IN_PLACE,
        kept(INPUTS_SAME, in_place=True, generation=None),
        options=IN_PLACE,
        found=None,
    ),
    Case(
        "--repair found damage: rebuilt although nothing changed (a new generation installs afresh)",
        replace(LIVE, repair=Repair(2, ("tinydb",), ("tinydb",))),
        built(rebuild=(), reuse=("core", "webapp")),
        found=replace(FOUND, cached=frozenset({"core", "webapp"})),
    ),
    Case(
        "--repair --in-place: the damaged distributions are reinstalled",
        replace(LIVE_IN_PLACE, repair=Repair(1, ("tinydb",))),
        built(
            reason="converged in place",
            in_place=True,
            generation=None,
            effective_sha256=effective(options=IN_PLACE),
            reinstall=("tinydb",),
            rollback_on_hook_failure=False,
        ),
        options=IN_PLACE,
    ),
    Case(
        "--repair found nothing: unchanged, and says so",
        replace(LIVE, repair=Repair(0)),
        kept("verify found nothing to repair; " + INPUTS_SAME),
        found=None,
    ),
    Case(
        "moved generation: rebuilt where it now is",
        replace(LIVE, healthy=False, moved_from="/old/app/.venv"),
        built(reason=MOVED_NOTE + "new generation built"),
    ),
    Case(
        "moved in place: venv files written afresh, every package reinstalled",
        replace(LIVE_IN_PLACE, healthy=False, moved_from="/old/app/.venv"),
        built(
            reason=MOVED_NOTE + "converged in place",
            in_place=True,
            generation=None,
            effective_sha256=effective(options=IN_PLACE),
            reinstall=tuple(sorted(PACKAGES)),
            refresh_venv=True,
            rollback_on_hook_failure=False,
        ),
        options=IN_PLACE,
    ),
    Case(
        "hooks listed: they run after the switch, rolled back on failure",
        LIVE,
        built(
            effective_sha256=effective(project=EDITED),
            rebuild=("webapp",),
            reuse=("core",),
            hooks=HOOKS,
            clone_from=1,
            delta_members=("webapp",),
            sync_lock=False,
        ),
        project=replace(EDITED, hooks=HOOKS),
        found=replace(FOUND, cached=frozenset({"core"})),
    ),
    Case(
        "hooks with --no-rollback: a failure leaves the new generation live",
        LIVE,
        built(
            effective_sha256=effective(project=EDITED),
            hooks=HOOKS,
            rollback_on_hook_failure=False,
            clone_from=1,
            delta_members=("webapp",),
            sync_lock=False,
        ),
        project=replace(EDITED, hooks=HOOKS),
        rollback=False,
    ),
    Case(
        "hooks listed with --no-hooks: none run, and the reason says they were skipped",
        LIVE,
        built(
            reason="new generation built; post-deploy hooks skipped (--no-hooks)",
            effective_sha256=effective(project=EDITED),
            rebuild=("webapp",),
            reuse=("core",),
            clone_from=1,
            delta_members=("webapp",),
            sync_lock=False,
        ),
        project=replace(EDITED, hooks=HOOKS),
        found=replace(FOUND, cached=frozenset({"core"})),
        run_hooks=False,
    ),
    Case(
        "--no-hooks and no hooks listed: nothing to skip, nothing said",
        LIVE,
        built(
            effective_sha256=effective(project=EDITED),
            clone_from=1,
            delta_members=("webapp",),
            sync_lock=False,
        ),
        project=EDITED,
        run_hooks=False,
    ),
    Case(
        "hooks listed, --no-hooks and nothing changed: unchanged, as without it",
        LIVE,
        kept(INPUTS_SAME),
        project=replace(PROJECT, hooks=HOOKS),
        found=None,
        run_hooks=False,
    ),
    Case(
        "hooks defined but nothing changed: none run",
        LIVE,
        kept(INPUTS_SAME),
        project=replace(PROJECT, hooks=HOOKS),
        found=None,
    ),
    Case(
        "a plain venv at --env: adopted as a kept generation",
        replace(NOTHING, kind="venv", env_kind="venv"),
        built(generation=None, interpreter_reused=False, check_lock=True, adopt=True, previous_packages={}),
    ),
    Case(
        "an adopted generation is live: its record has no fingerprints, so everything is asked",
        replace(
            LIVE,
            number=2,
            record=GenerationState(number=1, kind="adopted", created="", packages={"six": "1.16.0"}),
        ),
        built(generation=2, interpreter_reused=False, check_lock=True, previous_packages={"six": "1.16.0"}),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_decision(case: Case) -> None:
    decided = decide(
        case.project, case.live, case.options, case.found, rollback=case.rollback, run_hooks=case.run_hooks
    )
    assert decided == case.expected


REFUSED = [
    (
        "an unknown group",
        plan.Options(("nope",)),
        PROJECT,
        LIVE,
        "unknown dependency group 'nope': /src/app/pyproject.toml and its members define dev, docs",
    ),
    (
        "a group when the project defines none",
        plan.Options(("dev",)),
        replace(PROJECT, defined_groups=()),
        NOTHING,
        "unknown dependency group 'dev': /src/app/pyproject.toml and its members define no groups",
    ),
    (
        "--in-place on a generation symlink",
        IN_PLACE,
        PROJECT,
        replace(LIVE, kind="in-place"),
        f"{ENV} is a symlink to a venvkeeper generation; --in-place would change a kept generation",
    ),
]


@pytest.mark.parametrize(
    ("options", "project", "live", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused(options: plan.Options, project: Project, live: Live, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        decide(replace(project, inputs="inputs-new"), live, options, FOUND)
    assert str(refused.value) == message


def test_the_inputs_alone_must_settle_a_decision_made_without_uv() -> None:
    with pytest.raises(ValueError, match="needs what uv found"):
        decide(EDITED, LIVE, RUNTIME, None)


QUESTIONS = [
    ("nothing live: ask uv everything", NOTHING, PROJECT, RUNTIME, Questions(None, True, None)),
    ("an edited member: the record answers all", LIVE, EDITED, RUNTIME, Questions(PYTHON, False, "export-1")),
    ("a new lock: uv checks it and exports it", LIVE, RELOCKED, RUNTIME, Questions(None, True, None)),
    (
        "another group: the export is asked",
        LIVE,
        PROJECT,
        plan.Options(("docs",)),
        Questions(PYTHON, False, None),
    ),
    (
        "the recorded interpreter changed: uv finds one",
        replace(LIVE, interpreter_intact=False),
        EDITED,
        RUNTIME,
        Questions(None, False, "export-1"),
    ),
]


@pytest.mark.parametrize(
    ("live", "project", "options", "expected"), [q[1:] for q in QUESTIONS], ids=[q[0] for q in QUESTIONS]
)
def test_what_uv_is_asked(live: Live, project: Project, options: plan.Options, expected: Questions) -> None:
    assert questions(project, live, options) == expected
