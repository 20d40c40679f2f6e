"""Smoke-check a freshly built environment before anything points at it.

One run of the new interpreter: it starts, every member's top-level packages import, and every
console script the members declare exists, is executable and names this interpreter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from venvkeeper.core.errors import SmokeCheckError
from venvkeeper.gateways.python import DidNotRunError, run_python

__all__ = ["MARKERS_SNIPPET", "marker_environment", "smoke_check"]

# PEP 508's environment markers as the interpreter sees them (the same keys as packaging's
# default_environment), so a lock's markers can be evaluated without running it again.
MARKERS_SNIPPET = r"""
import os, platform, sys
def _v(info):
    text = "%d.%d.%d" % info[:3]
    return text if info.releaselevel == "final" else text + info.releaselevel[0] + str(info.serial)
markers = {
    "implementation_name": sys.implementation.name,
    "implementation_version": _v(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
"""

_SCRIPT = (
    MARKERS_SNIPPET
    + r"""
import importlib, json, os, shlex, sys
modules, scripts, bindir = json.loads(sys.argv[1])
failures = []
for name in modules:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failures.append(f"import {name}: {type(exc).__name__}: {exc}")
me = os.path.realpath(sys.executable)
for script in scripts:
    path = os.path.join(bindir, script)
    if not os.path.isfile(path):
        failures.append(f"console script {script}: missing from {bindir}")
        continue
    if not os.access(path, os.X_OK):
        failures.append(f"console script {script}: not executable")
        continue
    with open(path, "rb") as fh:
        head = fh.read(512).decode("utf-8", "replace").splitlines()
    interp = None
    if head and head[0].startswith("#!/bin/sh") and len(head) > 1 and "exec" in head[1]:
        # The trampoline for long or spaced paths: pip writes '''exec' "/path/python" "$0" "$@",
        # uv single-quotes the path and writes a ' inside it as '"'"'. Both are shell words.
        try:
            words = shlex.split(head[1])
        except ValueError:
            words = []
        interp = words[1] if len(words) > 1 and words[0] == "exec" else None
    elif head and head[0].startswith("#!"):
        interp = head[0][2:].strip().split()[0]
    if interp is None or os.path.realpath(interp) != me:
        failures.append(f"console script {script}: runs {interp!r}, not this environment's python")
print(json.dumps({
    "failures": failures,
    "version": "%d.%d.%d" % sys.version_info[:3],
    "implementation": sys.implementation.name,
    "base_executable": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
    "base_prefix": sys.base_prefix,
    "markers": markers,
}))
"""
)


def smoke_check(
    env_dir: Path, modules: Sequence[str], scripts: Sequence[str], *, timeout: float = 300
) -> dict[str, Any]:
    """Run the checks; return what the interpreter said about itself, or raise SmokeCheckError."""
    python = env_dir / "bin" / "python"
    payload = json.dumps([list(modules), list(scripts), str(env_dir / "bin")])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    # The check must not litter: imports here would otherwise write __pycache__ into the generation
    # that the sealed manifest is about to describe.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        proc = run_python(python, ["-I"], _SCRIPT, [payload], timeout=timeout, env=env, cwd=env_dir)
    except DidNotRunError as exc:
        raise SmokeCheckError(
            f"the new environment's interpreter {python} does not start: {exc}",
            hint="check the interpreter given with --python",
        ) from exc
    try:
        report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SmokeCheckError(
            f"the new environment's interpreter {python} failed (exit {proc.returncode})",
            hint="the previous environment is still live; see the output below",
            detail=proc.stderr[-2000:],
        ) from None
    if report["failures"]:
        raise SmokeCheckError(
            f"smoke check failed: {report['failures'][0]}",
            hint="the previous environment is still live; fix the member and deploy again",
            detail="\n".join(report["failures"]),
        )
    return report


def marker_environment(python: Path) -> dict[str, str] | None:
    """The environment markers of an environment's interpreter, or None if it does not run."""
    try:
        proc = run_python(
            python, ["-I", "-B"], MARKERS_SNIPPET + "import json; print(json.dumps(markers))", timeout=60
        )
        found: dict[str, str] = json.loads(proc.stdout)
    except (DidNotRunError, ValueError):
        return None
    return found
