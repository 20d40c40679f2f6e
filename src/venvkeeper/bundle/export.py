"""``venvkeeper export``: the lock's runtime set as ``pylock.toml`` (PEP 751) or a hashed
``requirements.txt``, for container builds whose dependency layer must change only with the lock.

uv writes the file (``uv export --frozen``: the lock as it is, nothing re-resolved, nothing written
into the project). The workspace members are left out: a container build copies and installs them
in a later layer, so that a code change does not rebuild the dependency layer.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.results import Result
from venvkeeper.gateways import git as gitcmd
from venvkeeper.generations import engine
from venvkeeper.project import selection, staging
from venvkeeper.project.facts import defined_groups
from venvkeeper.project.workspace import load_lock_members, load_workspace, parse_lock, stale_member

__all__ = ["FORMATS", "ExportResult", "export"]

# --format value -> uv's format name and the file name a container build would use.
FORMATS = {"pylock": "pylock.toml", "requirements": "requirements.txt"}


@dataclass
class ExportResult(Result):
    format: str
    output: str | None  # None: written to standard output
    sha256: str
    groups: list[str] = field(default_factory=list)
    command: str = "export"
    content: str = ""  # printed when there is no output file

    def payload(self) -> dict[str, Any]:
        return {"format": self.format, "output": self.output, "sha256": self.sha256, "groups": self.groups}


def export(
    project_dir: Path,
    fmt: str,
    output: Path | None,
    groups: tuple[str, ...] | None,
    *,
    python: str | None = None,
) -> ExportResult:
    """Check the lock is current (offline), export it, and write ``output`` atomically."""
    workspace = load_workspace(project_dir)
    lock = parse_lock(workspace)
    members = load_lock_members(workspace, lock)
    wanted = selection.chosen(groups, workspace.config.groups)
    defined = defined_groups(lock, members)
    unknown = sorted(set(wanted) - set(defined))
    if unknown:
        raise ConfigError(
            f"unknown dependency group '{unknown[0]}': {workspace.root / 'pyproject.toml'} and its members "
            f"define {', '.join(defined) or 'no groups'}",
            hint="check the --group name",
        )
    # The lock check runs in a copy: on a fresh cache it may build a member's metadata, and a
    # backend (setuptools' egg-info) writes beside the sources. Every uv call gets the project's
    # interpreter ([tool.venvkeeper] python, else the one uv finds for it).
    # The copy carries git metadata when a member's version comes from git (see staging.py).
    with tempfile.TemporaryDirectory(prefix="venvkeeper-export-") as scratch:
        git = staging.wants_git(workspace.root, members)
        stage = staging.populate(
            workspace.root, gitcmd.list_files(workspace.root), Path(scratch), git=git, members=members
        )
        request = python if python is not None else workspace.config.python
        if request and "/" in request:
            request = os.path.abspath(request)  # uv runs in the copy
        interpreter = engine.find_python(stage, request, project=workspace.root)
        engine.check_lock(stage, workspace.lock_path, stale_member(workspace, lock, members), interpreter)
    content = engine.export_file(workspace.root, FORMATS[fmt], wanted, interpreter, members=False)
    if output is not None:
        target = Path(os.path.abspath(output))
        if target.is_dir():
            target = target / FORMATS[fmt]
        if not target.parent.is_dir():
            raise ConfigError(
                f"{target.parent}: no such directory", hint="create it, or give another -o path"
            )
        fsutil.atomic_write_bytes(target, content)
    return ExportResult(
        format=FORMATS[fmt],
        output=None if output is None else str(target),
        sha256=hashlib.sha256(content).hexdigest(),
        groups=list(wanted),
        content=content.decode() if output is None else "",
    )
