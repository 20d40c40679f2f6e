"""Running a user's shell command (a hook, a test suite) with a timeout that really stops it.

``subprocess.run(timeout=...)`` kills only ``/bin/sh``: a test runner or server it started keeps
running, and keeps the output pipe open, so the call then waits for it anyway. The command runs in
a session of its own instead, and the whole process group is killed at the timeout (TERM, then KILL).
With ``kill_leftovers`` (a test suite) it is killed when the command ends too, so nothing it left in
the background outlives the run; a hook that starts a service in the background keeps it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ShellRun", "run_shell", "tail"]

_GRACE_S = 5.0


@dataclass(frozen=True)
class ShellRun:
    exit_code: int | None  # None: killed at the timeout
    duration_s: float
    output: bytes  # stdout and stderr, interleaved

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_shell(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    log: Path | None = None,
    kill_leftovers: bool = False,
) -> ShellRun:
    """Run ``command`` with ``/bin/sh -c``; its output goes to ``log`` (kept) or a temporary file.

    A file rather than a pipe: a background child holding the pipe cannot make us wait, and a test
    suite's megabytes of output never sit in memory.
    """
    start = time.monotonic()
    # A log is for the operator (and their group) only: test output can hold what the tests printed.
    with open(log, "w+b", opener=_private) if log is not None else tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        code: int | None
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            code = None
            out.write(f"\n[venvkeeper: killed after {timeout:g}s]\n".encode())
        if kill_leftovers:
            _kill_group(proc.pid, signal.SIGKILL)  # whatever the tests left running in their group
        out.flush()
        out.seek(0)
        output = out.read()
    return ShellRun(code, time.monotonic() - start, output)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o640)


def tail(output: bytes, lines: int) -> str:
    return "\n".join(output.decode(errors="replace").rstrip().splitlines()[-lines:])
