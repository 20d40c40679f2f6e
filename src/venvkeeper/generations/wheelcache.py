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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.generations.layout import Layout

__all__ = ["cached", "prune", "slot", "store"]


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
