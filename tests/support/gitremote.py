"""A bare git remote for a fixture project, and what the tests read from repositories.

:func:`add_remote` makes ``<root>/<project>.git``, adds it to the project as ``origin``, pushes
``main`` and sets it as the upstream, as a clone from a real server would be. With
``rejecting=True`` the remote's pre-receive hook refuses every later push, the way a protected
branch on a server does.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .process import run

__all__ = ["REJECT_MESSAGE", "Remote", "add_remote", "changed_files", "commit_message", "head", "log"]

REJECT_MESSAGE = "pushes to main are closed (protected branch)"

_REJECT_HOOK = f"""#!/bin/sh
echo "{REJECT_MESSAGE}" >&2
exit 1
"""


def log(repo: Path, rev: str = "HEAD") -> list[str]:
    """The subjects of ``rev``'s history, newest first (a work tree or a bare repository)."""
    return run(["git", "log", "--format=%s", rev], cwd=repo).stdout.splitlines()


def head(repo: Path, rev: str = "HEAD") -> str:
    return run(["git", "rev-parse", rev], cwd=repo).stdout.strip()


def commit_message(repo: Path, rev: str = "HEAD") -> str:
    return run(["git", "log", "-1", "--format=%B", rev], cwd=repo).stdout


def changed_files(repo: Path, rev: str = "HEAD") -> list[str]:
    """The files the commit ``rev`` changed."""
    return run(["git", "show", "--format=", "--name-only", rev], cwd=repo).stdout.split()


@dataclass(frozen=True)
class Remote:
    """A bare repository that a project pushes ``main`` to."""

    path: Path
    branch: str = "main"

    def log(self) -> list[str]:
        return log(self.path, self.branch)

    def head(self) -> str:
        return head(self.path, self.branch)

    def show(self, file: str) -> bytes:
        """``file``'s bytes at the tip of the branch (exact: no newline translation)."""
        return subprocess.run(
            ["git", "show", f"{self.branch}:{file}"], cwd=self.path, capture_output=True, check=True
        ).stdout

    def reject_pushes(self) -> None:
        hook = self.path / "hooks" / "pre-receive"
        hook.write_text(_REJECT_HOOK)
        hook.chmod(0o755)


def add_remote(project: Path, root: Path, *, name: str = "origin", rejecting: bool = False) -> Remote:
    """Make a bare remote under ``root`` for ``project``, push ``main`` to it and track it."""
    bare = root / f"{project.name}.git"
    run(["git", "init", "-q", "--bare", "-b", "main", bare], cwd=root)
    run(["git", "remote", "add", name, bare], cwd=project)
    run(["git", "push", "-q", "-u", name, "main"], cwd=project)
    remote = Remote(bare)
    if rejecting:
        remote.reject_pushes()
    return remote
