"""The only module that runs uv.

uv is found explicitly, in this order: the binary shipped in the ``uv`` wheel we depend on
(``uv.find_uv_bin()``), then ``$UV``, then ``PATH``; it must be at least ``MIN_UV_VERSION``.
Every call gets a cleaned environment so that the caller's shell cannot change what is installed.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from venvkeeper.errors import ToolError

__all__ = ["MIN_UV_VERSION", "UvResult", "find_uv", "run_uv", "uv_env", "uv_version"]

MIN_UV_VERSION = (0, 9, 0)

# Variables that would point uv at another environment or project, or inject code into the
# interpreters it probes. UV_PROJECT_ENVIRONMENT is set explicitly where it is wanted.
_DROPPED = (
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "UV_PROJECT_ENVIRONMENT",
    "UV_PROJECT",
    "UV_WORKING_DIRECTORY",
    "UV_FROZEN",
    "UV_LOCKED",
    "UV_NO_SYNC",
    "UV_DEV",
    "UV_NO_DEV",
    # A version plugin runs git in the staging copy: a git hook's GIT_DIR (a deploy from
    # post-receive) would point it at the source repository instead (see staging.py).
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
)


@dataclass(frozen=True)
class UvResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _probe(candidate: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [candidate, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"uv (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(p) for p in match.groups()) if match else None


_LOCATE_LOCK = threading.Lock()


def _located() -> tuple[str, tuple[int, ...]]:
    # Deploy runs uv from two threads at once. The lookup is serialised: besides probing only once,
    # uv.find_uv_bin() reads sysconfig, whose lazy first initialisation is not thread-safe (a second
    # thread can see get_config_var("EXE") return None).
    with _LOCATE_LOCK:
        return _locate_once()


@functools.cache
def _locate_once() -> tuple[str, tuple[int, ...]]:
    candidates: list[tuple[str, str]] = []
    try:
        import uv  # noqa: PLC0415 - optional at run time: a system uv on PATH also serves

        candidates.append(("the uv package", uv.find_uv_bin()))
    except (ImportError, FileNotFoundError):
        pass
    if os.environ.get("UV"):
        candidates.append(("$UV", os.environ["UV"]))
    on_path = shutil.which("uv")
    if on_path:
        candidates.append(("PATH", on_path))
    too_old: list[str] = []
    for origin, candidate in candidates:
        version = _probe(candidate)
        if version is None:
            continue
        if version >= MIN_UV_VERSION:
            return candidate, version
        too_old.append(f"{candidate} ({origin}) is {'.'.join(map(str, version))}")
    wanted = ".".join(map(str, MIN_UV_VERSION))
    if too_old:
        raise ToolError(
            f"uv is too old: {'; '.join(too_old)}; venvkeeper needs uv >= {wanted}",
            hint=f"pip install 'uv>={wanted}' into venvkeeper's environment, or set $UV to a newer uv",
        )
    raise ToolError(
        "uv not found (not in venvkeeper's environment, $UV or PATH)",
        hint=f"pip install 'uv>={wanted}' into venvkeeper's environment, or set $UV to a uv binary",
    )


def find_uv() -> str:
    """Path of the uv binary to use (cached for the process)."""
    return _located()[0]


def uv_version() -> str:
    return ".".join(map(str, _located()[1]))


def uv_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every uv call runs with."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env["UV_NO_PROGRESS"] = "1"
    # A deploy must never fetch an interpreter behind the operator's back; a missing one is an error.
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    if extra:
        env.update(extra)
    return env


def run_uv(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> UvResult:
    """Run ``uv ARGS`` in ``cwd`` and capture its output; never raises on a non-zero exit.

    ``cwd`` is always given: uv discovers configuration by walking up from its working directory,
    and the caller's directory (possibly an unreadable /root) must not matter.
    """
    argv = (find_uv(), *args)
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=uv_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"uv {' '.join(args[:2])} did not finish within {timeout:.0f}s",
            hint="check the package index is reachable",
        ) from exc
    except OSError as exc:
        raise ToolError(f"cannot run uv at {argv[0]}: {exc.strerror}", hint="reinstall uv") from exc
    return UvResult(argv, proc.returncode, proc.stdout, proc.stderr)
