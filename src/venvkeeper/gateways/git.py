"""The only module that runs git.

venvkeeper reads a project's file list from git (tracked files inside a work tree; outside one, the
files git would not ignore). Only ``venvkeeper update`` writes to a repository: it commits the lock
it tested, pushes it, and undoes exactly that commit when the push or the deploy fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from venvkeeper.core.errors import ToolError, unreadable_file

__all__ = [
    "commit_paths",
    "current_branch",
    "head",
    "index_path",
    "is_work_tree",
    "list_files",
    "make_mirror",
    "mirror_source",
    "push",
    "remote_exists",
    "remote_head",
    "revert",
    "run_git",
    "status",
    "uncommit",
    "upstream_remote",
    "version_state",
]

# A checkout owned by root and read by a service user trips git's safe.directory check
# (CVE-2022-24765). Reading the file list is safe as long as the repository's config cannot run
# programs, so fsmonitor is switched off for these read-only calls.
_SAFE = ("-c", "safe.directory=*", "-c", "core.fsmonitor=false", "-c", "core.quotepath=off")


def _git() -> str:
    found = shutil.which("git")
    if not found:
        raise ToolError("git not found on PATH", hint="install git (apt-get install git)")
    return found


# The caller's identity and transport settings (a deploy key in GIT_SSH_COMMAND under cron) pass
# through; variables that would point git at another repository (GIT_DIR, GIT_WORK_TREE) do not.
_PASSED = ("GIT_CONFIG", "GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_SSH", "GIT_ASKPASS")


def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    check: bool = True,
    timeout: float | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k.startswith(_PASSED)}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"  # never take index.lock: the tree may be read-only
    try:
        proc = subprocess.run(
            [_git(), *_SAFE, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            check=False,
            input=stdin if stdin is not None else b"",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"git {args[0]} did not finish within {timeout:.0f}s in {cwd}",
            hint="check that the remote is reachable without a prompt (a deploy key, GIT_SSH_COMMAND)",
        ) from exc
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
        return sorted({n for n in names if _present(directory / n)})
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


def _present(path: Path) -> bool:
    """A tracked file that is there (a regular file or a link). One in a directory this user cannot
    enter is one error line naming it (Path.is_file raises EACCES there on Python 3.11)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    except PermissionError as exc:
        raise unreadable_file(exc) from None
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


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


# -- a staging copy with git metadata (versions from VCS) ----------------------------------------


@dataclass(frozen=True)
class MirrorSource:
    """What a staging copy needs from the source repository to answer git as the source does.

    Read without writing (GIT_OPTIONAL_LOCKS=0: not even the index's stat cache is refreshed).
    """

    top: Path  # the work tree's top level
    prefix: str  # the directory read, relative to ``top`` ("" or "sub/dir/")
    objects: Path  # the object store, borrowed read-only through alternates
    refs: bytes  # packed-refs lines: every ref (tags decide the version, branches a scheme's)
    head: str  # "ref: refs/heads/x" or a commit id (detached); "" when HEAD is unborn
    index_info: bytes  # `ls-files -s -z`: the source's index entries, staged changes included
    changed: dict[str, str]  # path (from top) -> status letter of its uncommitted work-tree change
    shallow: bytes | None  # the shallow file, where the clone is shallow
    abbrev: str | None  # core.abbrev: it sets the length of the commit id in a version
    object_format: str = "sha1"  # a sha256 repository's objects need a sha256 mirror


def _lines(proc: subprocess.CompletedProcess[bytes]) -> list[str]:
    return proc.stdout.decode(errors="surrogateescape").splitlines()


def mirror_source(directory: Path) -> MirrorSource:
    """Read what :func:`make_mirror` copies from the work tree holding ``directory``."""
    top, prefix, common, object_format = _lines(
        run_git(
            ["rev-parse", "--show-toplevel", "--show-prefix", "--git-common-dir", "--show-object-format"],
            cwd=directory,
        )
    )[:4]
    top_dir = Path(top)
    common_dir = (directory / common).resolve()
    symbolic = run_git(["symbolic-ref", "-q", "HEAD"], cwd=top_dir, check=False)
    commit = run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=top_dir, check=False)
    if symbolic.returncode == 0:
        head = "ref: " + _out(symbolic)
    else:
        head = _out(commit) if commit.returncode == 0 else ""
    refs = run_git(["for-each-ref", "--format=%(objectname) %(refname)"], cwd=top_dir).stdout
    index_info = run_git(["ls-files", "-s", "-z"], cwd=top_dir).stdout
    status_out = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=no"], cwd=top_dir).stdout
    changed: dict[str, str] = {}
    fields = status_out.decode(errors="surrogateescape").split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        if entry[0] in "RC":
            i += 1
        changed[entry[3:]] = entry[1] if entry[1] != " " else entry[0]
    shallow_path = Path(
        _out(run_git(["rev-parse", "--path-format=absolute", "--git-path", "shallow"], cwd=top_dir))
    )
    abbrev = run_git(["config", "--get", "core.abbrev"], cwd=top_dir, check=False)
    return MirrorSource(
        top=top_dir,
        prefix=prefix,
        objects=common_dir / "objects",
        refs=refs,
        head=head,
        index_info=index_info,
        changed=changed,
        shallow=shallow_path.read_bytes() if shallow_path.is_file() else None,
        abbrev=_out(abbrev) or None if abbrev.returncode == 0 else None,
        object_format=object_format or "sha1",
    )


def make_mirror(source: MirrorSource, top: Path, skip_worktree: Sequence[str]) -> None:
    """Give the copy at ``top`` (the source's tracked files already in place) git metadata of its own.

    A new repository whose objects are the source's (alternates: read, never written), with the
    source's refs, HEAD and index entries, so that ``git describe``/``status`` in the copy give the
    source's answers: the same tags, distance, commit id, branch and uncommitted changes. Index
    entries whose files the copy does not hold (outside the project, unchanged) are marked
    skip-worktree: absent, yet not "deleted". Nothing in the source is written.
    """
    formats = [] if source.object_format == "sha1" else [f"--object-format={source.object_format}"]
    run_git(["init", "-q", *formats, str(top)], cwd=top)
    git_dir = top / ".git"
    (git_dir / "objects" / "info" / "alternates").write_text(f"{source.objects}\n")
    (git_dir / "packed-refs").write_bytes(source.refs)
    if source.shallow is not None:
        (git_dir / "shallow").write_bytes(source.shallow)
    if source.abbrev is not None:
        run_git(["config", "core.abbrev", source.abbrev], cwd=top)
    if source.head:
        (git_dir / "HEAD").write_text(source.head + "\n")
    # `ls-files -s -z` prints "mode object stage<TAB>path", which `update-index --index-info` reads.
    run_git(["update-index", "-z", "--index-info"], cwd=top, stdin=source.index_info)
    if skip_worktree:
        stdin = b"".join(name.encode(errors="surrogateescape") + b"\0" for name in skip_worktree)
        run_git(["update-index", "-z", "--skip-worktree", "--stdin"], cwd=top, stdin=stdin)


def version_state(directory: Path) -> dict[str, object]:
    """What a version computed from git depends on: HEAD, its branch, the tags, uncommitted changes."""
    top = Path(_out(run_git(["rev-parse", "--show-toplevel"], cwd=directory)))
    commit = run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=top, check=False)
    branch = run_git(["symbolic-ref", "-q", "HEAD"], cwd=top, check=False)
    tags = run_git(["for-each-ref", "--format=%(objectname) %(refname)", "refs/tags"], cwd=top)
    dirty = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=no"], cwd=top)
    return {
        "head": _out(commit) if commit.returncode == 0 else None,
        "branch": _out(branch) if branch.returncode == 0 else None,
        "tags": hashlib.sha256(tags.stdout).hexdigest(),
        "dirty": bool(dirty.stdout.strip(b"\0")),
    }


# -- writing: venvkeeper update only -------------------------------------------------------------

# The repository's own hooks do not run: with safe.directory=* the repository may belong to another
# user, and running its hooks is what CVE-2022-24765 warns about.
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


def _out(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode(errors="replace").strip()


def _why(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
    return "; ".join(lines[-3:]) if lines else f"git exited with status {proc.returncode}"


def current_branch(directory: Path) -> str | None:
    """The checked-out branch, or None on a detached HEAD."""
    proc = run_git(["symbolic-ref", "--short", "-q", "HEAD"], cwd=directory, check=False)
    return _out(proc) or None if proc.returncode == 0 else None


def commit_of(directory: Path) -> str | None:
    """HEAD's commit, or None outside a git work tree (or before the first commit)."""
    proc = run_git(["rev-parse", "HEAD"], cwd=directory, check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def head(directory: Path) -> str:
    return _out(run_git(["rev-parse", "HEAD"], cwd=directory))


def upstream_remote(directory: Path) -> str | None:
    """The remote the checked-out branch tracks (``branch.<name>.remote``), if any."""
    branch = current_branch(directory)
    if branch is None:
        return None
    proc = run_git(["config", "--get", f"branch.{branch}.remote"], cwd=directory, check=False)
    return _out(proc) or None if proc.returncode == 0 else None


def remote_exists(directory: Path, remote: str) -> bool:
    return run_git(["remote", "get-url", remote], cwd=directory, check=False).returncode == 0


def _identity(directory: Path) -> list[str]:
    """A committer identity for a host where git has none (a service account under cron)."""
    if run_git(["var", "GIT_COMMITTER_IDENT"], cwd=directory, check=False).returncode == 0:
        return []
    return ["-c", "user.name=venvkeeper", "-c", f"user.email=venvkeeper@{socket.gethostname()}"]


def commit_paths(directory: Path, paths: Sequence[str], message: str) -> str:
    """Commit exactly ``paths`` (relative to ``directory``) with ``message``; returns the new HEAD."""
    run_git(["add", "--", *paths], cwd=directory)
    proc = run_git(
        [*_NO_HOOKS, *_identity(directory), "commit", "-q", "-F", "-", "--", *paths],
        cwd=directory,
        check=False,
        stdin=message.encode(),
    )
    if proc.returncode != 0:
        raise ToolError(f"git commit failed in {directory}: {_why(proc)}", hint="check the repository")
    return head(directory)


def push(directory: Path, remote: str, branch: str, *, timeout: float = 300.0) -> str | None:
    """Push HEAD to ``remote``'s ``branch``; None when it worked, else git's reason.

    The reason keeps what the remote said (a protected branch's hook message) and the rejected ref,
    not git's generic "failed to push some refs" and its hints.
    """
    proc = run_git(
        [*_NO_HOOKS, "push", "-q", remote, f"HEAD:refs/heads/{branch}"],
        cwd=directory,
        check=False,
        timeout=timeout,
    )
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith(("remote:", "!", "fatal:"))]
    return "; ".join(said[-4:]) if said else _why(proc)


def remote_head(directory: Path, remote: str, branch: str, *, timeout: float = 60.0) -> str | None:
    """The commit ``remote``'s ``branch`` is at now (None when it cannot be asked)."""
    try:
        proc = run_git(
            ["ls-remote", remote, f"refs/heads/{branch}"], cwd=directory, check=False, timeout=timeout
        )
    except ToolError:
        return None
    words = _out(proc).split()
    return words[0] if proc.returncode == 0 and words else None


def uncommit(directory: Path, commit: str, parent: str, paths: Sequence[str]) -> None:
    """Take back ``commit`` (which must still be HEAD): the branch returns to ``parent`` and
    ``paths`` are unstaged. The caller puts the files' bytes back."""
    if head(directory) != commit:
        raise ToolError(
            f"cannot undo commit {commit[:12]} in {directory}: HEAD moved to {head(directory)[:12]}",
            hint=f"undo it by hand: git revert {commit[:12]}",
        )
    run_git(["reset", "-q", "--soft", parent], cwd=directory)
    run_git(["reset", "-q", parent, "--", *paths], cwd=directory)


def revert(directory: Path, commit: str) -> str:
    """A new commit undoing ``commit`` (already published, so history is not rewritten)."""
    proc = run_git(
        [*_NO_HOOKS, *_identity(directory), "revert", "--no-edit", commit], cwd=directory, check=False
    )
    if proc.returncode != 0:
        raise ToolError(
            f"git revert {commit[:12]} failed in {directory}: {_why(proc)}",
            hint=f"revert it by hand: git revert {commit[:12]}",
        )
    return head(directory)
