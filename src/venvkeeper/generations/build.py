"""The last step of populating any environment: smoke-check it, seal it, write its manifest.

deploy (a new generation or in place) and install (a bundle) both install their packages their own way,
then call :func:`finish`; its result goes into the generation's record (:func:`interpreter_record`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from venvkeeper.core import files as fsutil
from venvkeeper.generations.manifest import Manifest, seal
from venvkeeper.generations.smoke import smoke_check
from venvkeeper.generations.wheels import WheelInfo

__all__ = ["Finished", "both", "finish", "interpreter_record"]

A = TypeVar("A")
B = TypeVar("B")


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Run two independent steps (separate processes) at once; a failure of either is raised."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        one, two = pool.submit(first), pool.submit(second)
        return one.result(), two.result()


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
) -> Finished:
    """Smoke-check ``env_dir`` (the members' modules import, their scripts run this interpreter), seal
    it and write the manifest to ``manifest_path``. ``provided``: what the members' wheels provide;
    ``sources``: each member's files with their hashes, sealed with it (empty for a bundle)."""
    infos = list(provided)
    # The smoke check writes nothing (no bytecode), so the manifest can be sealed while it runs.
    report, manifest = both(
        lambda: smoke_check(
            env_dir,
            sorted({m for i in infos for m in i.top_level}),
            sorted({s for i in infos for s in i.scripts}),
        ),
        lambda: seal(env_dir, sources),
    )
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
