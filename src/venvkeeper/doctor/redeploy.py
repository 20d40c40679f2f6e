"""Heal of an environment venvkeeper deployed: a repairing deploy from the project it was built from.

A sealed generation is never edited in place. Heal checks that the project is still there (or moved
along with the environment) and unchanged since the build, then hands the rebuild to a
:class:`Redeployer`: doctor does not import deploy, the command line passes deploy in.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from venvkeeper.core import paths
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.lazy import lazy
from venvkeeper.doctor import healplan
from venvkeeper.doctor.envfacts import Facts
from venvkeeper.doctor.result import Action

if TYPE_CHECKING:
    from venvkeeper.project import facts as project_facts
    from venvkeeper.project import plan, workspace
else:  # tomllib and the git gateway: only for an environment deployed from a project that is still there
    project_facts = lazy("venvkeeper.project.facts")
    plan = lazy("venvkeeper.project.plan")
    workspace = lazy("venvkeeper.project.workspace")

__all__ = ["Redeployer", "redeploy", "redeploy_check"]


class Redeployer(Protocol):
    """Deploy ``project`` to ``env`` again as a repair (the live environment verified, rebuilt if it
    differs) with the options it was deployed with; returns the live generation's number (None for an
    ``--in-place`` environment). Raises :class:`VenvkeeperError` when the deploy fails."""

    def __call__(
        self, project: Path, env: Path, *, groups: tuple[str, ...], python: str | None, in_place: bool
    ) -> int | None: ...


def redeploy_check(facts: Facts, env: str) -> healplan.Redeploy | None:
    """Whether ``env`` is venvkeeper's to redeploy, from which project, and if not, why (None: not ours)."""
    state = facts.state
    if state is None and facts.kind == "generation":
        return healplan.Redeploy(
            None,
            f"generation {facts.generation} has no readable record, and a sealed generation is never edited "
            f"in place: run `venvkeeper deploy PROJECT_DIR --env {env}`",
        )
    sealed = _sealed_elsewhere(facts, env, state)
    if sealed is not None:
        return sealed
    if state is None or state.get("kind") != "deploy":
        return None
    project = state.get("project")
    if project and not os.path.isfile(f"{project}/uv.lock"):
        project = _moved_along(facts, env, state, project) or project
    generation = f"generation {facts.generation}" if facts.generation is not None else "the environment"
    if not project or not os.path.isfile(f"{project}/uv.lock"):
        return healplan.Redeploy(
            project,
            f"{generation} was deployed from {project}, which has no uv.lock any more; "
            f"run `venvkeeper deploy PROJECT_DIR --env {env}`",
        )
    with open(f"{project}/uv.lock", "rb") as fh:
        current = hashlib.sha256(fh.read()).hexdigest()
    if current != state.get("lock_sha256"):
        changed = f"{project}/uv.lock"
    else:
        members = _changed_members(project, state)
        changed = f"{', '.join(members)} in {project}" if members else ""
    if not changed:
        return healplan.Redeploy(project, None)
    return healplan.Redeploy(
        project,
        f"{changed} changed since {generation} was built, and heal does not update: "
        f"run `venvkeeper deploy {project} --env {env}`",
    )


def _sealed_elsewhere(facts: Facts, env: str, state: dict[str, Any] | None) -> healplan.Redeploy | None:
    """A recorded generation of any kind but ``deploy`` (heal redeploys) and ``adopted`` (a venv taken
    over as it was): sealed, so never edited in place; heal names the command that builds a new one."""
    kind = None if state is None else state.get("kind")
    if kind in (None, "deploy", "adopted"):
        return None
    if kind == "install":
        bundle = (state or {}).get("options", {}).get("bundle", "BUNDLE")
        return healplan.Redeploy(
            None,
            f"generation {facts.generation} was installed from a bundle, and a sealed generation is never "
            f"edited in place: run `venvkeeper install {bundle} --env {env}` (with --python for another one)",
        )
    generation = f"generation {facts.generation}" if facts.generation is not None else "the environment"
    if kind == "pylock":
        lock = (state or {}).get("options", {}).get("pylock") or "pylock.toml"
        command = f"venvkeeper deploy --lock {lock} --env {env}"
    else:
        command = f"venvkeeper deploy PROJECT_DIR --env {env}"
    return healplan.Redeploy(
        None,
        f"{generation} was built by `{kind}`, and a sealed generation is never edited in place: "
        f"run `{command}` (with --python for another interpreter)",
    )


def _moved_along(facts: Facts, env: str, state: dict[str, Any], project: str) -> str | None:
    """The recorded project at its new place, when it moved together with the environment
    (``/srv/app/{src,.venv}`` moved as ``/srv/app``): the same path relative to --env's directory,
    holding the very uv.lock the generation was built from. None otherwise."""
    old = paths.moved_from(state, facts.root, facts.generation)
    if old is None:
        return None
    # generations/NNNN lies in ENV.venvkeeper beside --env; an --in-place environment is --env.
    old_env = (
        old if facts.generation is None else os.path.dirname(os.path.dirname(old)).removesuffix(".venvkeeper")
    )
    # The recorded project is a resolved path: resolve --env's directories too (a symlinked /srv, say;
    # not --env itself, a link to its generation).
    relative = os.path.relpath(project, os.path.realpath(os.path.dirname(old_env)))
    candidate = os.path.normpath(
        os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(env))), relative)
    )
    try:
        with open(f"{candidate}/uv.lock", "rb") as fh:
            same = hashlib.sha256(fh.read()).hexdigest() == state.get("lock_sha256")
    except OSError:
        return None
    return candidate if same else None


def _changed_members(project: str, state: dict[str, Any]) -> list[str]:
    """Members whose files differ from what the generation was built from (heal rebuilds the same
    environment; new code is deploy's to bring). A project it cannot read is left to deploy's own
    error line."""
    recorded = [m for m in state.get("members") or [] if isinstance(m, dict)]
    try:
        loaded = workspace.load_workspace(Path(project))
        members = tuple(workspace.LockedMember(m["name"], m["path"], bool(m["package"])) for m in recorded)
        facts = project_facts.ProjectFacts(loaded, members, plan.Options(), str(state.get("lock_sha256")))
    except (VenvkeeperError, OSError, KeyError, TypeError):
        return []
    # The files alone: a member's full hash also holds what a git version depends on (HEAD, tags,
    # the day of a dirty tree, override variables), which heal does not rebuild for.
    was = {m["name"]: m.get("files_sha256", m.get("sha256")) for m in recorded}
    now = {
        name: facts.file_hashes[name] if "files_sha256" in m else facts.member_hashes[name]
        for m in recorded
        if (name := m["name"]) in facts.member_hashes
    }
    return sorted(name for name, digest in now.items() if was.get(name) != digest)


def redeploy(redeployer: Redeployer, env: str, action: Action, facts: Facts) -> tuple[int | None, str | None]:
    """Carry out a ``redeploy`` action; returns (the live generation, failure reason or None)."""
    options = (facts.state or {}).get("options") or {}
    try:
        generation = redeployer(
            Path(str(action.data["project"])),
            Path(env),
            groups=tuple(options.get("groups") or ()),
            python=action.data["python"] or options.get("python"),
            in_place=facts.kind == "in-place",
        )
    except VenvkeeperError as exc:
        return None, f"deploy failed: {exc.message}"
    return generation, None
