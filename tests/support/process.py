"""Run a program from a test or fixture and show its output when it fails."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["CommandError", "run"]


class CommandError(AssertionError):
    """A command that had to succeed did not; the message carries its output."""


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with captured text output; with ``check``, fail showing stdout and stderr."""
    result = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and result.returncode != 0:
        command = " ".join(str(arg) for arg in argv)
        raise CommandError(
            f"`{command}` exited {result.returncode} in {cwd or Path.cwd()}\n"
            f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
        )
    return result
