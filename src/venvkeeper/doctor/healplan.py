"""What heal will do about doctor's findings: a list of actions, and what it must leave alone.

Pure, like :mod:`venvkeeper.doctor.diagnosis`: the interpreter to use and whether a deployed environment
can be redeployed are found by :mod:`venvkeeper.doctor.find_interpreter` and
:mod:`venvkeeper.doctor.redeploy` and passed in.
"""

from __future__ import annotations

import os
import re

from venvkeeper.doctor.result import Action

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.doctor.diagnosis import Problem
    from venvkeeper.doctor.envfacts import Facts
    from venvkeeper.project.interpreters import Interpreter

__all__ = ["INTERPRETER_CODES", "Plan", "Redeploy", "plan"]

# Findings a re-pointed interpreter (links and pyvenv.cfg) repairs.
INTERPRETER_CODES = frozenset(
    {
        "interpreter-dangling",
        "interpreter-link-dangling",
        "interpreter-mismatch",
        "home-missing",
        "pyvenv-cfg-unparsable",
        "pyvenv-cfg-missing-key",
    }
)


class Redeploy:
    """Whether an environment venvkeeper deployed can be rebuilt from what it was deployed from."""

    def __init__(self, project: str | None, reason: str | None) -> None:
        self.project = project
        self.reason = reason  # None: it can


class Plan:
    def __init__(self) -> None:
        self.actions: list[Action] = []
        self.covers: dict[tuple[str, str], Action] = {}  # finding -> the action that repairs it
        self.skipped: dict[tuple[str, str], str] = {}  # finding -> why heal leaves it

    def add(self, action: Action, problems: list[Problem]) -> None:
        self.actions.append(action)
        for problem in problems:
            self.covers[problem.key] = action

    def skip(self, problems: list[Problem], reason: str) -> None:
        for problem in problems:
            self.skipped[problem.key] = reason


def _no_interpreter(minor: str | None) -> str:
    which = f"CPython {minor}" if minor else "CPython"
    return (
        f"no {which} interpreter found (looked at --python, the recorded interpreter, PATH, pyenv and uv's "
        f"managed Pythons); pass --python /path/to/python{minor or '3.X'}"
    )


def _stale_paths(facts: Facts, problems: list[Problem], python_names: set[str]) -> Action | None:
    """Rewrite the stale shebangs and activate scripts in place, nothing else."""
    stale = [p for p in problems if p.code in ("stale-shebang", "stale-activate")]
    if not stale:
        return None
    shebangs: dict[str, tuple[str, str]] = {}
    for script in facts.scripts:
        if script.interpreter in facts.places:
            name = os.path.basename(script.interpreter)
            new = f"{facts.root}/bin/{name if name in python_names else 'python'}"
            shebangs[f"bin/{script.name}"] = (script.interpreter, new)
    activates = {f"bin/{name}": (facts.activate_path or "", facts.root) for name in facts.activates}
    if not any(p.code == "stale-activate" for p in stale):
        activates = {}
    files = sorted({*shebangs, *activates})
    detail = f"{len(files)} file(s) named another path; now {facts.root}"
    return Action("rewrite-paths", "bin", detail, shebangs=shebangs, activates=activates)


def _relink(facts: Facts, target: Interpreter, minor: str) -> list[Action]:
    actions: list[Action] = []
    by_name = {link.name: link for link in facts.links}
    if not by_name:
        actions.append(Action("relink", "bin/python", f"-> {target.path}", name="python", target=target.path))
        for name in ("python3", f"python{minor}"):
            actions.append(Action("relink", f"bin/{name}", "-> python", name=name, target="python"))
        return actions
    right = {os.path.realpath(target.path), target.executable}
    for link in facts.links:
        if link.resolved is not None and link.resolved in right:
            continue
        if link.target is not None and not link.target.startswith("/") and link.target in by_name:
            continue  # python3 -> python follows python, which is re-pointed itself
        if link.target is None:  # a --copies environment keeps copies
            actions.append(
                Action(
                    "relink", f"bin/{link.name}", f"copy of {target.path}", name=link.name, copy=target.path
                )
            )
        else:
            actions.append(
                Action("relink", f"bin/{link.name}", f"-> {target.path}", name=link.name, target=target.path)
            )
    return actions


def _cfg_updates(facts: Facts, target: Interpreter) -> dict[str, str]:
    values = facts.cfg.values if facts.cfg is not None else {}
    updates = {"home": os.path.dirname(target.path)}
    for key in ("version", "version_info"):
        if key in values:
            updates[key] = target.version
    if "executable" in values:
        updates["executable"] = target.executable
    if "command" in values:
        updates["command"] = f"{target.path} -m venv {facts.root}"
    # virtualenv also records where the base interpreter lives.
    for key in ("base-prefix", "base-exec-prefix"):
        if key in values and target.base_prefix:
            updates[key] = target.base_prefix
    if "base-executable" in values:
        updates["base-executable"] = target.executable
    return updates


def _convert(result: Plan, facts: Facts, todo: list[Problem], target: Interpreter | None) -> None:
    wanted = facts.packages_python or (target.minor if target else None)
    if target is None:
        result.skip(todo, _no_interpreter(wanted))
    elif wanted != target.minor:
        result.skip(
            todo,
            f"its packages are for Python {wanted}, not {target.minor}: convert it with --python {wanted}",
        )
    else:
        move = facts.kind == "target-dir"
        detail = f"uv venv --allow-existing --python {target.path}"
        if move:
            detail = (
                f"move {len(facts.flat_dists)} distribution(s) to lib/python{wanted}/site-packages; {detail}"
            )
        result.add(Action("convert", ".", detail, python=target.path, minor=wanted, flat=move), todo)


def _redeploy(
    result: Plan, todo: list[Problem], target: Interpreter | None, redeploy: Redeploy, minor: str | None
) -> None:
    codes = {p.code for p in todo}
    if redeploy.reason is not None:
        result.skip(todo, redeploy.reason)
    elif target is None and codes & (INTERPRETER_CODES | {"version-mismatch"}):
        result.skip(todo, _no_interpreter(minor))
    else:
        what = (
            f"on {target.describe()} ({target.path})" if target is not None else "on its recorded interpreter"
        )
        action = Action(
            "redeploy",
            ".",
            f"a new generation from {redeploy.project}, {what}",
            project=redeploy.project,
            python=None if target is None else target.path,
        )
        result.add(action, todo)


def _rebuild(result: Plan, todo: list[Problem], target: Interpreter | None, minor: str | None) -> None:
    if target is None:
        result.skip(todo, _no_interpreter(minor))
        return
    detail = f"the same distributions for {target.describe()} in a new directory, swapped in when complete"
    result.add(Action("rebuild", ".", detail, python=target.path), todo)


def _in_place(result: Plan, facts: Facts, todo: list[Problem], target: Interpreter | None) -> None:
    broken = [p for p in todo if p.code in INTERPRETER_CODES]
    names = {link.name for link in facts.links}
    if broken and target is None:
        reason = _no_interpreter(facts.packages_python)
        if facts.interpreter_link is not None:  # the platform's fix, for every environment on the link
            reason += (
                f"; or re-point the platform's link: ln -sfn NEW_STORE_ENTRY {facts.interpreter_link[0]}"
            )
        result.skip(broken, reason)
    elif broken and target is not None:
        links = _relink(facts, target, target.minor)
        for action in links:
            result.add(action, [])
        names |= {str(a.data["name"]) for a in links}
        updates = _cfg_updates(facts, target)
        detail = ", ".join(f"{k} = {v}" for k, v in updates.items())
        result.add(Action("write-pyvenv-cfg", "pyvenv.cfg", detail, updates=updates), broken)
    lib64 = [p for p in todo if p.code == "lib64-missing"]
    if lib64:
        result.add(Action("create-lib64", "lib64", "lib64 -> lib"), lib64)
    stale = [p for p in todo if p.code in ("stale-shebang", "stale-activate")]
    rewrite = _stale_paths(facts, stale, names)
    if rewrite is not None:
        result.add(rewrite, stale)
    for problem in (p for p in todo if p.code == "abi-mismatch"):
        owner = facts.foreign_extensions.get(problem.path, "")
        if not owner:
            result.skip([problem], "no distribution owns it; remove it by hand")
            continue
        name, version = owner.split(" ", 1)
        requirement = f"{name}=={version}"
        result.add(
            Action("reinstall", problem.path, requirement, requirement=requirement, name=name), [problem]
        )


def plan(
    facts: Facts,
    problems: list[Problem],
    *,
    target: Interpreter | None,
    redeploy: Redeploy | None,
    force: bool,
) -> Plan:
    """The repairs for ``problems``: ``target`` is the interpreter to use (None when none was found
    or none is needed), ``redeploy`` says whether venvkeeper deployed it and can deploy it again.
    """
    result = Plan()
    todo = [p for p in problems if p.severity != "note"]
    minor = facts.packages_python
    if not todo:
        pass
    elif facts.managed_by and not force:
        result.skip(todo, f"user-managed ({facts.managed_by}); heal changes nothing unless --force")
    elif not facts.is_venv:
        _convert(result, facts, todo, target)
    elif redeploy is not None:
        # A generation is sealed (verify checks it against its manifest): never edited in place.
        # That holds for a moved one too (its scripts name the old path): rewriting them and
        # sealing the generation again would make its manifest say what was built is what a later
        # edit made, and the kept generations would still be broken for a rollback. A new generation
        # from the recorded project and its byte-identical uv.lock (Redeploy.reason says when it is
        # not) is what deploy itself builds for a moved environment: one rule, one path, and its
        # members' wheels and uv's cache make it cost an install, not a build.
        _redeploy(result, todo, target, redeploy, minor)
    elif any(p.code == "version-mismatch" for p in todo) or (
        target is not None and minor is not None and target.minor != minor
    ):
        _rebuild(result, todo, target, minor)
    else:
        _in_place(result, facts, todo, target)
    return result


def is_version_request(value: str) -> bool:
    return bool(re.fullmatch(r"\d+\.\d+", value))
