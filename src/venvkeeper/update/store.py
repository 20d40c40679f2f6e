"""``STATE/update/``: update's history, lock backups, test logs and run marker, beside --env.

Everything update keeps lives here, never in the project: the source tree only ever receives the
lock (and the configured exports) that passed the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.core import paths
from venvkeeper.core.errors import ConfigError

__all__ = ["UpdateStore", "utc_stamp"]


def utc_stamp() -> str:
    """``20261121T100040123456Z``: sorts in time order, unique per run (microseconds)."""
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}Z"


@dataclass(frozen=True)
class UpdateStore:
    directory: Path

    @classmethod
    def for_env(cls, env: Path) -> UpdateStore:
        return cls(Path(paths.home(os.path.abspath(env))) / "update")

    @property
    def history(self) -> Path:
        return self.directory / "history.jsonl"

    @property
    def backups(self) -> Path:
        return self.directory / "backups"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def running(self) -> Path:
        return self.directory / "running.json"

    @property
    def pending(self) -> Path:
        """The journal of a run between writing the lock into the project and deploying it."""
        return self.directory / "pending.json"

    def candidate(self) -> Path:
        return self.directory / f"candidate-{os.getpid()}"

    def test_env(self, number: int) -> Path:
        """Where the tests run on generation ``number``'s clone: ``update/test-NNNN`` is exactly as long
        as ``generations/NNNN``, so a clone replaces the generation's path in its scripts byte for byte."""
        return self.directory / f"test-{number:04d}"

    def test_envs(self) -> list[Path]:
        return sorted(self.directory.glob("test-*")) if self.directory.is_dir() else []

    def stage(self, suffix: str = "") -> Path:
        return self.directory / f"stage-{os.getpid()}{suffix}"

    def prepare(self) -> None:
        # backups/ and logs/ appear when first needed: a dry run leaves only its history line.
        self.directory.mkdir(parents=True, exist_ok=True)

    def sweep(self) -> None:
        """Remove the test environments and staging copies of killed runs (the caller holds the lock)."""
        for entry in self.directory.glob("*-*") if self.directory.is_dir() else []:
            if entry.name.startswith(("candidate-", "stage-", "test-")):
                fsutil.remove_tree(entry)

    def backup_lock(self, lock_bytes: bytes, stamp: str, keep: int) -> Path:
        target = self.backups / f"uv.lock.{stamp}"
        self.backups.mkdir(exist_ok=True)
        fsutil.atomic_write_bytes(target, lock_bytes)
        self._prune(self.backups, "uv.lock.", keep)
        return target

    def log_path(self, stamp: str, what: str) -> Path:
        self.logs.mkdir(exist_ok=True)
        return self.logs / f"{stamp}-{what}.log"

    def prune_logs(self, keep: int) -> None:
        # Two logs (baseline, candidate) per run.
        self._prune(self.logs, "", keep * 2)

    @staticmethod
    def _prune(directory: Path, prefix: str, keep: int) -> None:
        if not directory.is_dir():
            return
        entries = sorted(p for p in directory.iterdir() if p.name.startswith(prefix))
        for old in entries[: max(0, len(entries) - keep)]:
            with contextlib.suppress(OSError):
                old.unlink()

    def write_pending(self, journal: dict[str, Any]) -> None:
        fsutil.atomic_write_json(self.pending, journal)

    def read_pending(self) -> dict[str, Any] | None:
        try:
            journal = json.loads(self.pending.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable: recovery says so instead of guessing
        return journal if isinstance(journal, dict) else {}

    def clear_pending(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pending.unlink()

    def mark_running(self, command: str) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "command": command}
        with contextlib.suppress(OSError):
            self.running.write_text(json.dumps(info))

    def clear_running(self) -> None:
        with contextlib.suppress(OSError):
            self.running.unlink()

    def holder(self) -> str:
        """Who runs the update now, as well as ``running.json`` tells (it may be absent)."""
        try:
            info = json.loads(self.running.read_text())
        except (OSError, ValueError):
            return "another venvkeeper update"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
        return f"pid {info.get('pid')} on {info.get('host')} (since {since})"

    def append(self, entry: dict[str, Any]) -> None:
        """One line per run; O_APPEND keeps concurrent writers' lines whole."""
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.history, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every run, oldest first; a line a crash cut short is skipped, not fatal."""
        try:
            text = self.history.read_text()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(
                f"{self.history}: cannot read: {exc.strerror}", hint="check its permissions"
            ) from exc
        entries: list[dict[str, Any]] = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries
