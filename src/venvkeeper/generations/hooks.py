"""Post-deploy hooks: shell commands run in the project with the new environment first on PATH."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.core import progress
from venvkeeper.gateways.selfexec import START_UP_VARIABLES
from venvkeeper.gateways.shell import run_shell, tail

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
    # The hooks run the environment's own interpreter: the caller's PYTHONPATH, PYTHONHOME and the
    # like (another minor's standard library, on a hosting platform) would break it, whether or not
    # they made venvkeeper re-execute itself (gateways/selfexec.py).
    # The mail credentials venvkeeper update reads are not the project's to see: a test that dumps
    # its environment on failure would put them in the report and the mail.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*START_UP_VARIABLES, "UV_PROJECT_ENVIRONMENT") and not k.startswith("VENVKEEPER_SMTP_")
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
        with progress.step(f"hook: {command}") as step:
            done = run_shell(command, cwd=cwd, env=env, timeout=timeout)
            run = HookRun(command, done.exit_code, done.duration_s, tail(done.output, _TAIL_LINES))
            if not run.ok:
                what = "timed out" if run.exit_code is None else f"exited {run.exit_code}"
                step.failed(f"hook: {command} ({what})")
        runs.append(run)
        if not run.ok:
            break
    return runs
