"""Stable interpreter links: an environment that names its interpreter through a path the platform owns.

An environment built on ``/nix/store/<hash>-python3-3.10.13/bin/python3.10`` breaks when the store moves
on to 3.10.14: its links and ``pyvenv.cfg`` name the old store path. With ``heal --link-root DIR`` the
environment names ``DIR/python3.10/bin/python3.10`` instead, and ``DIR/python3.10`` is one symlink to the
store path. A store upgrade within the minor is then one re-pointed symlink (``ln -sfn``), and every
environment on it follows without a heal; another minor is a heal (the packages must be rebuilt).

heal creates ``DIR/pythonX.Y`` when it is missing or dangling, and leaves it alone when it works: the
platform re-points it, heal does not second-guess it. Only plain venvs are re-pointed; a generation
venvkeeper deployed is sealed (deploy it with ``--python DIR/pythonX.Y/bin/pythonX.Y`` instead).
"""

from __future__ import annotations

import contextlib
import os

from venvkeeper.doctor import healplan, inplace
from venvkeeper.doctor.diagnosis import Problem, diagnose, versioned_component
from venvkeeper.doctor.envfacts import Facts, gather
from venvkeeper.doctor.result import Action, Outcome

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.doctor.result import HealResult

__all__ = ["LINK_ROOT_VARIABLE", "link_through_root", "stable_target", "versioned_component"]

LINK_ROOT_VARIABLE = "VENVKEEPER_LINK_ROOT"


def stable_target(link_root: str, minor: str) -> str:
    """``DIR/pythonX.Y``: the link the platform re-points on a store upgrade within the minor."""
    return f"{os.path.abspath(link_root)}/python{minor}"


def _problem(seen: str, severity: str = "error") -> Problem:
    return Problem("unstable-interpreter", severity, "bin/python", seen, "heal --link-root DIR")


_NOT_RUNNING = "bin/python is not a link to a running interpreter (a --copies venv, or broken)"


def _plan(facts: Facts, link_root: str) -> tuple[list[Action], str | None]:
    """The actions that route ``facts``'s environment through the link root, or why there are none."""
    if facts.kind != "venv":
        return [], f"a {facts.kind} is not re-pointed (deploy it with --python DIR/python3.X/bin/python3.X)"
    base, minor = facts.base_interpreter, facts.interpreter.minor if facts.interpreter else None
    if base is None or minor is None:
        return [], _NOT_RUNNING
    stable = stable_target(link_root, minor)
    if base.startswith(stable + "/") and os.path.exists(base):
        return [], None  # already through the link root, and the link works
    real = os.path.realpath(base)
    prefix = os.path.dirname(os.path.dirname(real))
    inside = os.path.relpath(real, prefix)  # bin/python3.11
    actions: list[Action] = []
    if not os.path.exists(stable):  # missing or dangling: heal makes it; a working one is the platform's
        actions.append(Action("link-root", stable, f"-> {prefix}", link=stable, target=prefix))
    elif not os.path.exists(f"{stable}/{inside}"):
        return [], f"{stable} -> {os.path.realpath(stable)} has no {inside}"
    target = f"{stable}/{inside}"
    for link in facts.links:
        if link.target is not None and link.target.startswith("/"):
            name = link.name
            actions.append(Action("relink", f"bin/{name}", f"-> {target}", name=name, target=target))
    updates = {"home": os.path.dirname(target)}
    values = facts.cfg.values if facts.cfg is not None else {}
    for key in ("executable", "base-executable"):
        if key in values:
            updates[key] = target
    detail = ", ".join(f"{k} = {v}" for k, v in updates.items())
    actions.append(Action("write-pyvenv-cfg", "pyvenv.cfg", detail, updates=updates))
    return actions, None


def _make_link(link: str, target: str) -> None:
    """``link -> target``, replacing a dangling one atomically (``ln -sfn``)."""
    os.makedirs(os.path.dirname(link), exist_ok=True)
    temporary = f"{link}.heal-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)


def link_through_root(result: HealResult, link_root: str, *, dry_run: bool) -> None:
    """Route the healed environment of ``result`` through ``link_root``; add what was done to it."""
    if not dry_run and result.exit_code != 0:
        return  # not healthy: nothing to route
    facts = gather(result.env)
    actions, reason = _plan(facts, link_root)
    if reason == _NOT_RUNNING and dry_run and any(o.outcome == "would-repair" for o in result.outcomes):
        # A broken venv's links are routed once the repairs above are made: a dry run cannot tell
        # them yet. Any other reason (a generation, a link root without that interpreter) still holds.
        reason = f"routed through {link_root} once the repairs above are made"
    if reason is not None:
        # A note: the environment works, it is only not routed (heal's exit code stays 0).
        result.outcomes.append(
            Outcome(_problem(f"not routed through {link_root}", "note"), "skipped", reason)
        )
        return
    if not actions:
        return
    result.actions.extend(actions)
    if dry_run:
        return
    created = [a for a in actions if a.action == "link-root"]
    failure = None
    try:
        for action in created:
            _make_link(action.data["link"], action.data["target"])
    except OSError as exc:
        failure = f"{exc.filename or link_root}: {exc.strerror or exc}"
    if failure is None:
        plan = healplan.Plan()
        for action in actions:
            if action.action != "link-root":
                plan.add(action, [])
        failure = inplace.edit_in_place(facts, plan, diagnose(facts))
    if failure is not None:
        result.outcomes.append(Outcome(_problem(f"links {facts.base_interpreter}"), "still-broken", failure))
    result.changed = result.changed or failure is None
