"""What a deploy leaves for the next identical no-op to answer from file metadata
(:mod:`venvkeeper.cli.fastpath`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.gateways import git as gitcmd
from venvkeeper.generations import stamp as stamps
from venvkeeper.generations.layout import Layout, read_state_file
from venvkeeper.project.facts import ProjectFacts

__all__ = ["leave"]


def leave(layout: Layout, facts: ProjectFacts, key: Any, *, in_place: bool, generation: int | None) -> None:
    """The stamp of every file the deploy read (``key``: its request, stamps.request_key), or none
    where a later change could go unseen."""
    root = facts.workspace.root
    index = gitcmd.index_path(root)
    if in_place:
        state_file, state = layout.inplace_state, read_state_file(layout.inplace_state)
    elif generation is not None:
        state_file, state = layout.state_file(generation), layout.read_state(generation)
    else:
        state_file, state = layout.home, None
    if index is None or state is None or facts.dynamic:
        # Outside git an added file leaves no trace to compare, nor does a new tag in the index's
        # metadata (a version from git), so every run checks in full.
        stamps.clear_stamp(layout.home)
        return
    read = [root / f for f in facts.files]
    read += [
        root / "uv.lock",
        root / ".python-version",
        index,
        state_file,
        Path(state.interpreter["realpath"]),
    ]
    read += [root / m.path / "pyproject.toml" for m in facts.members]
    record = stamps.stamp_record(
        key=key,
        target=None if in_place else os.readlink(layout.env),
        generation=generation,
        files=read,
        now=time.time(),
    )
    # Cleared first either way: an older venvkeeper's stamp (another file name) must not linger.
    stamps.clear_stamp(layout.home)
    if record is not None:
        fsutil.atomic_write_bytes(layout.home / stamps.STAMP_NAME, stamps.encode(record))
