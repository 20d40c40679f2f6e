"""Run a Python interpreter on a small program: the one place venvkeeper starts an interpreter itself.

Every caller asks a question of an interpreter (what it is, whether a new environment imports, its
environment markers) with isolating flags (``-I``, and ``-S`` or ``-B`` as the question needs), a
timeout, no stdin, and its output captured. Kept free of typing and dataclasses: doctor, whose start-up
is timed, probes interpreters through it.
"""

from __future__ import annotations

import os
import subprocess

from venvkeeper.gateways.selfexec import clean_environ

TYPE_CHECKING = False  # typing is not imported at run time (timed paths)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["DidNotRunError", "run_python"]


class DidNotRunError(Exception):
    """The interpreter could not be started, or was killed at the timeout; the text says which."""


def run_python(
    python: str | os.PathLike[str],
    flags: Sequence[str],
    program: str,
    args: Sequence[str] = (),
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python FLAGS -c PROGRAM ARGS`` with its output captured as text; raise DidNotRunError if it could not
    start or ran past ``timeout`` seconds. ``env``: the whole environment (None: this process's, without
    PYTHONPATH, PYTHONHOME and the like: another minor's standard library there breaks the interpreter
    asked, and ``-I`` alone does not clear them for what it starts)."""
    try:
        return subprocess.run(
            [os.fspath(python), *flags, "-c", program, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=clean_environ(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DidNotRunError(str(exc)) from exc
