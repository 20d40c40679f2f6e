"""Where one capability's command is handed to another: capabilities never import each other.

heal redeploys an environment venvkeeper built, and update ships its tested lock: both with deploy. Each
declares the call it needs (:class:`venvkeeper.doctor.redeploy.Redeployer`,
:class:`venvkeeper.update.ship.Deploy`); the command line builds it here from :mod:`venvkeeper.deploy`.
deploy is loaded only when the call is made: most heals repair files and never redeploy, and loading
the deploy machinery (uv's gateway, the engine) would double a heal's start-up.
"""

from __future__ import annotations

from pathlib import Path

from venvkeeper.core.lazy import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.deploy import converge
    from venvkeeper.generations.results import DeployResult
else:
    converge = lazy("venvkeeper.deploy.converge")


def redeploy_for_heal(
    project: Path, env: Path, *, groups: tuple[str, ...], python: str | None, in_place: bool
) -> int | None:
    """heal's redeploy: a deploy with ``--repair``; the generation it made (None: converged in place)."""
    request = converge.DeployRequest(
        project_dir=project, env=env, groups=groups, python=python, in_place=in_place, repair=True
    )
    return converge.deploy(request).generation


def ship_with_deploy(
    project: Path, env: Path, *, groups: tuple[str, ...], python: str | None
) -> DeployResult:
    """update's ship: a plain deploy of the project (never in place), on the live interpreter."""
    return converge.deploy(converge.DeployRequest(project, env, groups=groups, python=python, in_place=False))
