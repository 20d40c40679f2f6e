"""Populating an environment: a lock's packages with the members' wheels (:func:`install_locked`), and
the last step of every environment, smoke-check, seal, manifest (:func:`finish`).

deploy (a new generation or in place) installs a lock, install a bundle's pylock.toml; both then call
:func:`finish`, whose result goes into the generation's record (:func:`interpreter_record`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from venvkeeper.core import files as fsutil
from venvkeeper.core import progress
from venvkeeper.generations import engine, smoke
from venvkeeper.generations import manifest as sealing
from venvkeeper.generations.layout import read_packages
from venvkeeper.generations.manifest import Manifest, SealedFile
from venvkeeper.generations.wheels import WheelInfo

__all__ = ["Finished", "both", "finish", "install_locked", "installing", "interpreter_record", "members_step"]

A = TypeVar("A")
B = TypeVar("B")


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Run two independent steps (separate processes) at once; a failure of either is raised."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        one, two = pool.submit(first), pool.submit(second)
        return one.result(), two.result()


def install_locked(
    stage: Path,
    env_dir: Path,
    python: Path,
    groups: Sequence[str],
    member_wheels: Callable[[], dict[str, Path]],
    *,
    reinstall: Sequence[str] = (),
    reinstall_members: bool = False,
) -> dict[str, Path]:
    """Create ``env_dir`` with the lock's third-party packages for ``groups`` (uv, in the staging copy
    ``stage``) while ``member_wheels()`` builds or finds the members' wheels, then install those.
    ``reinstall``: distributions installed afresh (the members too, when any); ``reinstall_members``:
    the members installed afresh even so (an environment filled again). Returns the members' wheels."""

    def sync() -> None:
        with installing(env_dir, "installing the locked packages"):
            engine.sync_dependencies(stage, env_dir, python, groups, reinstall=reinstall)

    _, wheels = both(sync, member_wheels)
    if wheels:  # a project of dependencies only (a virtual root) has no member to install
        with members_step(list(wheels)):
            engine.install_wheels(
                stage, env_dir, list(wheels.values()), reinstall=bool(reinstall) or reinstall_members
            )
    return wheels


@contextlib.contextmanager
def installing(env_dir: Path, label: str) -> Iterator[progress.Step]:
    """The step ``label`` (a uv install into ``env_dir``), left as "installing N packages" once done: the
    distributions it added or changed, counted from ``env_dir`` only when someone watches (uv runs
    ``--quiet``, its output captured for the errors: its own progress is not there to pass on)."""
    before = read_packages(env_dir) if progress.active() else {}
    with progress.step(label) as current:
        yield current
        if progress.active():
            after = read_packages(env_dir)
            count = sum(1 for name, version in after.items() if before.get(name) != version)
            current.summary = f"installing {count} package{'' if count == 1 else 's'}"


def members_step(names: Sequence[str]) -> contextlib.AbstractContextManager[progress.Step]:
    """The step that installs the workspace members' wheels, named."""
    return progress.step(f"installing {', '.join(sorted(names))}")


@dataclass(frozen=True)
class Finished:
    report: dict[str, Any]  # what the new interpreter said about itself (the smoke check)
    manifest: Manifest  # every file as built
    manifest_sha256: str

    @property
    def packages(self) -> dict[str, str]:
        return {name: d["version"] for name, d in self.manifest.distributions.items()}


def finish(
    env_dir: Path,
    manifest_path: Path,
    provided: Iterable[WheelInfo],
    sources: Mapping[str, Mapping[str, str]],
    *,
    reuse: Mapping[str, SealedFile] | None = None,
) -> Finished:
    """Compile the bytecode and smoke-check ``env_dir`` (the members' modules import, their scripts run
    this interpreter), seal it and write the manifest to ``manifest_path``. ``provided``: what the
    members' wheels provide; ``sources``: each member's files with their hashes, sealed with it (empty
    for a bundle). ``reuse``: what a clone linked (see :mod:`venvkeeper.generations.clone`), whose
    bytecode is not compiled again; None for an environment built from nothing, where every module is."""
    infos = list(provided)
    # The smoke check writes only bytecode, which the seal's walk skips, so the files can be sealed
    # while it runs; the bytecode is sealed once it has finished. Looked up on their modules when
    # called, so a profiler (bench/) can wrap them.
    report, manifest = both(
        progress.traced(
            "smoke check",
            lambda: smoke.smoke_check(
                env_dir,
                sorted({m for i in infos for m in i.top_level}),
                sorted({s for i in infos for s in i.scripts}),
                compile_all=reuse is None,
            ),
        ),
        progress.traced("sealing", lambda: sealing.seal(env_dir, sources, reuse)),
    )
    sealing.seal_bytecode(env_dir, manifest, reuse, str(report.get("cache_tag") or ""))
    manifest_sha = fsutil.atomic_write_json(manifest_path, manifest.to_json(), compact=True)
    return Finished(report, manifest, manifest_sha)


def interpreter_record(identity: Mapping[str, Any], report: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    """The record's ``interpreter``: its identity, what it said it is, and ``more`` (deploy's request)."""
    return {
        **identity,
        **more,
        "version": report["version"],
        "implementation": report["implementation"],
        "markers": report["markers"],
    }
