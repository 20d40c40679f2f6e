"""The only module that runs git.

venvkeeper reads a project's file list from git (tracked files inside a work tree; outside one, the
files git would not ignore). It never writes to the repository.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from venvkeeper.errors import ToolError

__all__ = ["index_path", "is_work_tree", "list_files", "run_git", "status"]

# A checkout owned by root and read by a service user trips git's safe.directory check
# (CVE-2022-24765). Reading the file list is safe as long as the repository's config cannot run
# programs, so fsmonitor is switched off for these read-only calls.
_SAFE = ("-c", "safe.directory=*", "-c", "core.fsmonitor=false", "-c", "core.quotepath=off")


def _git() -> str:
    import shutil  # noqa: PLC0415

    found = shutil.which("git")
    if not found:
        raise ToolError("git not found on PATH", hint="install git (apt-get install git)")
    return found


def run_git(args: Sequence[str], *, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k.startswith("GIT_CONFIG")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"  # never take index.lock: the tree may be read-only
    proc = subprocess.run(
        [_git(), *_SAFE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ToolError(
            f"git {args[0]} failed in {cwd}: {message[-1] if message else proc.returncode}",
            hint="check the directory is readable",
        )
    return proc


def is_work_tree(directory: Path) -> bool:
    proc = run_git(["rev-parse", "--is-inside-work-tree"], cwd=directory, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == b"true"


def list_files(directory: Path) -> list[str]:
    """Files under ``directory`` (relative POSIX paths, sorted) that make up the project.

    In a git work tree: the tracked files that exist in the working tree (their working-tree content
    is what gets built). Outside git: every file git would not ignore, using the tree's .gitignore
    files, read through a throw-away empty repository.
    """
    if is_work_tree(directory):
        proc = run_git(["ls-files", "-z", "--cached", "--", "."], cwd=directory)
        names = [n for n in proc.stdout.decode().split("\0") if n]
        return sorted({n for n in names if (directory / n).is_file() or (directory / n).is_symlink()})
    import tempfile  # noqa: PLC0415 - only outside git

    with tempfile.TemporaryDirectory(prefix="venvkeeper-git-") as empty:
        run_git(["init", "-q", "--bare", empty], cwd=Path(empty))
        proc = run_git(
            [
                f"--git-dir={empty}",
                f"--work-tree={directory}",
                "ls-files",
                "-z",
                "--others",
                "--exclude-standard",
            ],
            cwd=directory,
        )
    names = [n for n in proc.stdout.decode().split("\0") if n]
    return sorted(n for n in names if not _junk(n))


# Outside git there is no .gitignore to trust, so the usual build and environment litter is skipped.
_JUNK_PARTS = {
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    ".nox",
    "build",
    "dist",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
}


def _junk(name: str) -> bool:
    parts = name.split("/")
    return any(p in _JUNK_PARTS or p.endswith(".egg-info") for p in parts) or name.endswith(".pyc")


def index_path(directory: Path) -> Path | None:
    """Git's index file for the work tree holding ``directory`` (None outside git)."""
    proc = run_git(["rev-parse", "--git-path", "index"], cwd=directory, check=False)
    if proc.returncode != 0:
        return None
    return (directory / proc.stdout.decode().strip()).resolve()


_STATUS_WORDS = {
    "M": "modified",
    "A": "added",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "T": "type changed",
}


def status(directory: Path) -> list[tuple[str, str]]:
    """Uncommitted changes in the work tree holding ``directory``: [(what, path relative to it)].

    GIT_OPTIONAL_LOCKS=0 (set in run_git) keeps ``git status`` from refreshing the index, so this
    reads the repository without writing to it.
    """
    proc = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "."], cwd=directory)
    prefix = run_git(["rev-parse", "--show-prefix"], cwd=directory).stdout.decode().strip()
    changes: list[tuple[str, str]] = []
    fields = proc.stdout.decode(errors="surrogateescape").split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            i += 1  # -z gives a rename's source as the next field
        if code == "??":
            what = "untracked"
        else:
            letter = code[1] if code[1] != " " else code[0]
            what = _STATUS_WORDS.get(letter, "changed")
        changes.append((what, path.removeprefix(prefix)))
    return changes
