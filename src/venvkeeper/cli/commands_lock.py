"""A PEP 751 lock (``pylock.toml``) alone as the source of truth: ``deploy --lock``, ``verify --lock``,
``install pylock.toml``, and the fetcher they share.

deploy and verify are capabilities that never import bundle/: the wheels a lock names by URL are
fetched here, with the bundle's download cache (:mod:`venvkeeper.bundle.fetch`, each file checked
against the lock's sha256 before it enters the cache), and handed to them. A wheel the lock names
by path is checked against its sha256 where it is. So nothing needs the network when the lock's
files are local or already cached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from venvkeeper.cli import options
from venvkeeper.core.lazy import lazy

if TYPE_CHECKING:
    from venvkeeper.bundle import fetch as fetching
    from venvkeeper.bundle import locked
    from venvkeeper.deploy import pylockdeploy
    from venvkeeper.generations.results import DeployResult
    from venvkeeper.project import pylock as locks
    from venvkeeper.verify import pylockcheck
else:
    fetching = lazy("venvkeeper.bundle.fetch")
    locked = lazy("venvkeeper.bundle.locked")
    pylockdeploy = lazy("venvkeeper.deploy.pylockdeploy")
    locks = lazy("venvkeeper.project.pylock")
    pylockcheck = lazy("venvkeeper.verify.pylockcheck")

__all__ = [
    "Hooks",
    "deploy",
    "deploy_options",
    "fetch_wheels",
    "install",
    "is_pylock",
    "verify",
    "verify_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def fetch_wheels(wheels: Sequence[locks.LockedWheel], lock_path: Path) -> Mapping[str, Path]:
    """Every wheel as a local file, checked against the lock's sha256 (filename -> path)."""
    files: dict[str, Path] = {}
    remote = []
    for wheel in wheels:
        local = wheel.local
        if local is None:
            remote.append(
                locked.Artifact(
                    wheel.name, wheel.version, wheel.filename, wheel.url, wheel.sha256, wheel.size, "wheel"
                )
            )
            continue
        locks.check_file(local, wheel, lock_path)
        files[wheel.filename] = local
    if remote:
        files.update(fetching.download(remote, fetching.default_cache_dir(), progress=False))
    return files


def is_pylock(path: Path) -> bool:
    """``install``'s argument is a PEP 751 lock (by PEP 751's file names), not a bundle."""
    return locks.is_pylock(path)


def deploy_options(command: F) -> F:
    """deploy's options for a PEP 751 lock (the rest of deploy's options are shared)."""
    for decorator in reversed(
        (
            click.option(
                "--lock",
                "pylock",
                type=click.Path(path_type=Path, dir_okay=False),
                metavar="FILE",
                help="Deploy from this PEP 751 lock (pylock.toml) alone: no pyproject.toml or uv.lock.",
            ),
            click.option(
                "--hook",
                "hook_commands",
                multiple=True,
                metavar="CMD",
                help="With --lock: a post-deploy hook (repeatable); a failing one rolls back.",
            ),
            click.option(
                "--hooks-dir",
                type=click.Path(path_type=Path, file_okay=False, exists=True),
                metavar="DIR",
                help="With --lock: run the hooks in this directory (default: the lock's).",
            ),
        )
    ):
        command = decorator(command)
    return command


verify_option = click.option(
    "--lock",
    "pylock",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Prove --env against this PEP 751 lock (pylock.toml), file by file against its wheels.",
)


@dataclass(frozen=True)
class Hooks:
    """deploy --lock's hooks: ``--hook`` commands, ``--hooks-dir``, rollback on failure, ``--no-hooks``."""

    commands: tuple[str, ...] = ()
    directory: Path | None = None
    rollback: bool = True
    run: bool = True


def deploy(
    lock: Path,
    env: Path,
    groups: tuple[str, ...],
    python: str | None,
    keep: int | None,
    wait: bool,
    hooks: Hooks,
    check: bool,
    as_json: bool,
    diff: bool = False,
    command: str = "deploy",
    repair: bool = False,
) -> None:
    request = pylockdeploy.LockRequest(
        lock=lock,
        env=env,
        command=command,
        groups=groups or None,
        python=python,
        keep=keep,
        wait=wait,
        hooks=hooks.commands if hooks.run else (),
        hooks_dir=hooks.directory,
        rollback=hooks.rollback,
        check=check,
        repair=repair,
    )

    def action() -> DeployResult:
        result = pylockdeploy.deploy_lock(request, fetch_wheels)
        result.show_diff = diff
        return result

    options.run(command, as_json, action)


def refuse_with_lock(project: Path | None, *, in_place: bool) -> None:
    """deploy's arguments that mean nothing for a lock alone, refused rather than ignored."""
    if project is not None:
        raise click.UsageError(f"--lock deploys a pylock.toml alone: give no project directory ({project})")
    if in_place:
        raise click.UsageError(
            "--in-place does not apply to --lock: a pylock.toml is deployed into a new generation "
            "whenever it changes (`--repair` builds a new one when verify finds the live one damaged)"
        )


def install(
    lock: Path, env: Path, python: str | None, keep: int | None, wait: bool, check: bool, as_json: bool
) -> None:
    """``install pylock.toml --env PATH``: as ``deploy --lock``, with no hooks (a lock names none)."""
    deploy(lock, env, (), python, keep, wait, Hooks(run=False), check, as_json, command="install")


def verify(env: Path, lock: Path, *, fast: bool, as_json: bool) -> None:
    options.run("verify", as_json, lambda: pylockcheck.verify_lock(str(env), lock, fetch_wheels, fast=fast))
