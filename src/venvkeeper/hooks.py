"""Post-deploy hooks: shell commands run in the project with the new environment first on PATH."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["HookRun", "run_hooks"]

_TAIL_LINES = 40


@dataclass(frozen=True)
class HookRun:
    command: str
    exit_code: int | None  # None: killed at the timeout
    duration_s: float
    output_tail: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "ok": self.ok,
            "duration_s": round(self.duration_s, 3),
            "output_tail": self.output_tail,
        }


def hook_environment(env_path: Path, generation: int | None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT")
    }
    env["PATH"] = f"{env_path / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    env["VIRTUAL_ENV"] = str(env_path)
    env["VENVKEEPER_ENV"] = str(env_path)
    if generation is not None:
        env["VENVKEEPER_GENERATION"] = str(generation)
    return env


def run_hooks(
    commands: Sequence[str], *, cwd: Path, env_path: Path, generation: int | None, timeout: float
) -> list[HookRun]:
    """Run ``commands`` in order with ``sh -c``; stop at the first that fails. Returns every run."""
    runs: list[HookRun] = []
    env = hook_environment(env_path, generation)
    for command in commands:
        start = time.monotonic()
        try:
            proc = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
            code: int | None = proc.returncode
            output = proc.stdout
        except subprocess.TimeoutExpired as exc:
            code = None
            output = (exc.output or b"") + f"\n[venvkeeper: killed after {timeout:.0f}s]".encode()
        tail = "\n".join(output.decode(errors="replace").rstrip().splitlines()[-_TAIL_LINES:])
        run = HookRun(command, code, time.monotonic() - start, tail)
        runs.append(run)
        if not run.ok:
            break
    return runs
