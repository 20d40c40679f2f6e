"""The crash-recovery marker: what a run writes before touching the project, and how it is undone.

The journal is written before the project's files are; a run killed from then on (Python's finally does
not run on SIGTERM's default action or SIGKILL) is finished or undone by the next run, from the journal.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.gateways import git as gitcmd
from venvkeeper.update.session import Session

__all__ = ["journal", "read_or_none", "recover", "restore", "write_like"]


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_like(path: Path, content: bytes) -> None:
    """Replace ``path`` atomically, keeping its permission bits (a new file gets 0644)."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    path.parent.mkdir(parents=True, exist_ok=True)
    fsutil.atomic_write_bytes(path, content, mode=mode)


def journal(parent: str, originals: dict[str, bytes | None], files: dict[str, bytes]) -> dict[str, Any]:
    """The marker before anything is written: each file's original content, and a digest of the new."""
    return {
        "parent": parent,
        "commit": None,
        "pushed": False,
        "files": {
            name: {
                "original": None if content is None else base64.b64encode(content).decode(),
                "written": hashlib.sha256(files[name]).hexdigest(),
            }
            for name, content in originals.items()
        },
    }


def restore(session: Session, originals: dict[str, bytes | None], parent: str, commit: str | None) -> None:
    """Put the files back as they were, un-committing ``commit`` (None: nothing was committed)."""
    root, result = session.root, session.result
    if commit is not None:
        gitcmd.uncommit(root, commit, parent, sorted(originals))
    else:
        gitcmd.run_git(["reset", "-q", "--", *sorted(originals)], cwd=root, check=False)
    for name, content in originals.items():
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                (root / name).unlink()
        else:
            write_like(root / name, content)
    result.committed, result.lock_changed, result.restored = None, False, True


def _holds_written(root: Path, entries: dict[str, Any]) -> bool:
    """The work tree still has exactly what the killed run wrote (nobody edited it since)."""
    for name, entry in entries.items():
        current = read_or_none(root / name)
        if current is not None and hashlib.sha256(current).hexdigest() != entry.get("written"):
            return False
    return True


def recover(session: Session, who: str) -> None:
    """Undo what a run stopped between writing the lock and deploying it left, or say why not."""
    store, root, result = session.store, session.root, session.result
    marker = store.read_pending()
    if marker is None:
        return
    store.clear_pending()
    commit, parent = marker.get("commit"), marker.get("parent")
    entries = marker.get("files")
    if not isinstance(entries, dict) or not isinstance(parent, str):
        result.recovered = f"{store.pending} was unreadable; check {root} by hand"
        return
    originals = {
        name: None if e.get("original") is None else base64.b64decode(e["original"])
        for name, e in entries.items()
    }
    head = gitcmd.head(root)
    if marker.get("deploying"):
        pushed = "pushed" if marker.get("pushed") else "committed"
        result.recovered = (
            f"{who} was stopped while deploying {str(commit)[:12]} ({pushed}); "
            "it stays committed, and is deployed only if the live environment runs it"
        )
    elif commit and head == commit:
        restore(session, originals, parent, commit)
        result.recovered = (
            f"{who} was stopped before pushing: its commit {commit[:12]} was undone and uv.lock restored"
        )
    elif not commit and head == parent and _holds_written(root, entries):
        restore(session, originals, parent, None)
        result.recovered = f"{who} was stopped before committing: uv.lock was restored"
    else:
        result.recovered = (
            f"{who} was stopped half-way, and the repository has changed since; check {root} by hand"
        )
    if who != "this run":
        result.restored = False  # this run's own report starts clean
