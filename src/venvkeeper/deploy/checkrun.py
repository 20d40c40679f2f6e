"""``deploy --check``, carried out: the decision turned into the plan, with what it takes to know the
package changes (uv's export, the interpreter's markers, a dynamic version's wheel), and nothing written
where the deploy writes. The pure part is :mod:`venvkeeper.deploy.check`.

A dynamic version is read from the member's wheel: the wheel cache's for this content, else one built
into a scratch directory. That build runs on ``--check``'s empty, throwaway uv cache: on a host that
cannot fetch the build backend (offline, say) it may fail where the deploy, on the real cache, would
not. Then the version is left unknown and the reason says so; the answer itself (would change, what
is built) stands.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.core.errors import InterpreterError, VenvkeeperError
from venvkeeper.deploy import check
from venvkeeper.deploy.decision import Decision, Found, Live, Project
from venvkeeper.generations import engine, smoke, wheelcache
from venvkeeper.generations.layout import Layout
from venvkeeper.generations.results import DeployResult
from venvkeeper.generations.transaction import Target, packages_before
from venvkeeper.project import plan
from venvkeeper.project.facts import ProjectFacts

__all__ = ["Asked", "planned"]

# What uv's sync leaves in an existing venv though no lock names it: a venv made by `python -m venv`
# keeps pip and setuptools through `deploy --in-place` (seen with uv 0.13), so the check keeps them.
_SEED_PACKAGES = ("pip", "setuptools", "wheel")


@dataclass(frozen=True)
class Asked:
    """What converge gathered for this deploy (its ``_Run``, as far as the plan needs it)."""

    layout: Layout
    target: Target
    facts: ProjectFacts
    project: Project
    live: Live
    options: plan.Options
    started: float


def planned(
    asked: Asked,
    decided: Decision,
    found: Found | None,
    lock: dict[str, Any] | None,
    stage: Path | None,
) -> DeployResult:
    """The decision as a plan; the packages it would change read from uv's export for the chosen
    interpreter's markers (the export is asked for when the decision reused the record's)."""
    env = str(asked.layout.env)
    if not decided.changed or found is None or lock is None or stage is None:
        result = check.planned(decided, env=env, previous={}, packages=None)
    else:
        packages, unknown = _packages(asked, decided, found, lock, stage)
        previous = packages_before(asked.layout, asked.target, in_place=decided.in_place, adopt=decided.adopt)
        if decided.in_place:
            packages.update({n: v for n, v in previous.items() if n in _SEED_PACKAGES and n not in packages})
        result = check.planned(decided, env=env, previous=previous, packages=packages, unknown=unknown)
    record, root = asked.live.record, str(asked.facts.workspace.root)
    if not decided.changed and record is not None and record.project not in (None, root):
        # What the deploy does then (converge._moved_source): no build, the record names this checkout.
        result.reason += f"; a deploy would record {root} as its source (was {record.project})"
    result.duration_s = time.monotonic() - asked.started
    return result


def _packages(
    asked: Asked, decided: Decision, found: Found, lock: Mapping[str, Any], stage: Path
) -> tuple[dict[str, str], list[str]]:
    python = Path(found.python)
    text = found.export_text
    if text is None:
        text = engine.export_text(stage, asked.options.groups, python)
    markers = smoke.marker_environment(python)
    if markers is None:
        raise InterpreterError(f"{python}: does not run", hint="pass --python /path/to/python")
    predicted = check.predicted_packages(
        text, markers, lock, asked.facts.members, asked.project.member_hashes, asked.live.record
    )
    packages, unknown = predicted.packages, list(predicted.unknown)
    in_workspace = "manifest" in lock or len(asked.facts.members) > 1
    paths = {m.name: (m.path, in_workspace) for m in asked.facts.members}
    builds = [(name, *paths[name]) for name in predicted.unversioned]
    builds += [(name, path, False) for name, path in predicted.paths]
    for name, path, workspace in builds:
        version = _cached_version(asked, name, found) or _built_version(stage, name, path, python, workspace)
        if isinstance(version, VenvkeeperError):
            unknown.append(
                f"{name} (its version is known once built; --check's build failed: {version.message})"
            )
        else:
            packages[name] = version
    return packages, unknown


def _cached_version(asked: Asked, name: str, found: Found) -> str | None:
    """A member's version from the wheel cache's wheel for this very content, if there is one."""
    digest = asked.project.member_hashes.get(name)
    if digest is None:
        return None  # a path dependency: not in the wheel cache
    cached = wheelcache.cached(asked.layout, {name: digest}, found.interpreter)
    return check.wheel_version(cached[name]) if name in cached else None


def _built_version(
    stage: Path, name: str, path: str, python: Path, in_workspace: bool
) -> str | VenvkeeperError:
    """The version the wheel built from the staging copy carries (built into a scratch directory,
    removed after), or why it could not be built."""
    with tempfile.TemporaryDirectory(prefix="venvkeeper-check-wheel-") as out:
        try:
            wheel = engine.build_wheel(stage, name, path, Path(out), python, in_workspace=in_workspace)
        except VenvkeeperError as exc:
            return exc
        return check.wheel_version(wheel)
