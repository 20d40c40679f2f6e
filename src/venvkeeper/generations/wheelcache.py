"""Built workspace members kept beside the generations (``wheels/<member>/<digest>-<interpreter>/``).

Keyed by the member's content and the interpreter's real path (a member with compiled code differs
per interpreter), so an edited module is rebuilt even without a version bump, and an unchanged one is
reused by every later generation. A slot is complete or absent: a build is renamed into place whole.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.core import progress
from venvkeeper.generations import engine
from venvkeeper.generations.layout import Layout

__all__ = ["cached", "member_wheels", "prune", "slot", "store"]


def slot(layout: Layout, name: str, digest: str, interpreter: Mapping[str, Any]) -> Path:
    interp = hashlib.sha256(interpreter["realpath"].encode()).hexdigest()[:12]
    return layout.wheels / name / f"{digest[:32]}-{interp}"


def cached(
    layout: Layout, member_hashes: Mapping[str, str], interpreter: Mapping[str, Any]
) -> dict[str, Path]:
    """The members whose wheel for this content and interpreter is in the cache, with that wheel."""
    found: dict[str, Path] = {}
    for name, digest in member_hashes.items():
        wheels = sorted(slot(layout, name, digest, interpreter).glob("*.whl"))
        if len(wheels) == 1:
            found[name] = wheels[0]
    return found


def store(
    layout: Layout, name: str, digest: str, interpreter: Mapping[str, Any], build: Callable[[Path], Path]
) -> Path:
    """``build(out_dir)`` a member's wheel into a scratch directory, then move it into its slot whole."""
    target = slot(layout, name, digest, interpreter)
    out = Path(tempfile.mkdtemp(prefix=f"build-{name}-", dir=layout.tmp))
    try:
        built = build(out)
        fsutil.remove_tree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(out, target)  # whole-directory rename: a slot is complete or absent
    finally:
        fsutil.remove_tree(out)
    return target / built.name


def member_wheels(
    layout: Layout,
    stage: Path,
    python: Path,
    interpreter: Mapping[str, Any],
    members: Mapping[str, tuple[str, str]],
    rebuild: Collection[str],
    *,
    in_workspace: bool,
) -> dict[str, Path]:
    """Every member's wheel: those named in ``rebuild`` built from the staging copy ``stage`` into the
    cache, the others taken from it. ``members``: name -> (its path in the workspace, its content digest).

    Never uv's own cache for these: uv keys a local directory's build by its pyproject.toml's mtime,
    so an edited module with no version bump would come back stale (the defect this tool exists for).
    """
    reused = {name: digest for name, (_, digest) in members.items() if name not in rebuild}
    wheels = cached(layout, reused, interpreter)
    # A wheel the decision counted on may have gone since (a disk clean-up, a concurrent prune): such a
    # member is built like the others, never left out of the environment.
    for name in sorted({*rebuild, *(set(reused) - set(wheels))}):
        path, digest = members[name]

        def build(out: Path, name: str = name, path: str = path) -> Path:
            with progress.step(f"building {name}"):
                return engine.build_wheel(stage, name, path, out, python, in_workspace=in_workspace)

        wheels[name] = store(layout, name, digest, interpreter, build)
    return wheels


def prune(layout: Layout) -> None:
    """Drop cached member wheels that no kept generation was built from."""
    wanted: set[Path] = set()
    for number in layout.numbers():
        state = layout.read_state(number)
        for member in state.members if state else []:
            if member.get("wheel"):
                wanted.add(Path(member["wheel"]).parent)
    for member_dir in layout.wheels.iterdir() if layout.wheels.is_dir() else []:
        for entry in member_dir.iterdir():
            if entry not in wanted:
                shutil.rmtree(entry, ignore_errors=True)
