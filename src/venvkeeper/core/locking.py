"""One venvkeeper at a time per environment: a file lock, and a note of who holds it."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from venvkeeper.core.errors import BusyError

__all__ = ["hold"]


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # an arbitrary uid in a container has no passwd entry
        return str(os.getuid())


def _describe(owner_file: Path) -> str:
    try:
        info = json.loads(owner_file.read_text())
    except (OSError, ValueError):
        return "another venvkeeper process"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return (
        f"pid {info.get('pid')} on {info.get('host')} (user {info.get('user')}, since {started}: "
        f"{info.get('command')})"
    )


@contextlib.contextmanager
def hold(lock_file: Path, *, wait: bool, what: str) -> Iterator[None]:
    """Hold ``lock_file`` for the body; with ``wait=False`` fail at once, naming the holder."""
    owner_file = lock_file.with_name(lock_file.name + ".owner")
    lock = FileLock(lock_file, timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        raise BusyError(
            f"{what} is busy: {lock_file} is held by {_describe(owner_file)}",
            hint="wait for it to finish, or run without --no-wait to queue behind it",
        ) from None
    try:
        with contextlib.suppress(OSError):
            owner_file.write_text(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "user": _user(),
                        "started": time.time(),
                        "command": " ".join(sys.argv[:3]),
                    }
                )
            )
        yield
    finally:
        with contextlib.suppress(OSError):
            owner_file.unlink()
        lock.release()
