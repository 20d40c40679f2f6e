"""Smoke-check a freshly built environment before anything points at it.

One run of the new interpreter: it compiles the bytecode it is given (the changed members' modules),
then checks that it starts, every member's top-level packages import, and every console script the
members declare exists, is executable and names this interpreter.

Bytecode: the environment's own interpreter compiles (venvkeeper's may be another minor), and the
imports write the bytecode of what they load and does not have it yet. A clone carries its
predecessor's sealed bytecode, so that is the delta's; a generation built from nothing gets it for what
the application imports (compiling all of site-packages would cost seconds, and a bumped package's
modules that nothing imports, such as idna's 200 kB table, cost more to compile than uv takes to sync).
The seal that follows records what is there (:func:`venvkeeper.generations.manifest.seal_bytecode`),
before the switch: the application's first start is warm.
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
modules, scripts, bindir, compile_files = json.loads(sys.argv[1])
failures = []
if compile_files:
    # py_compile writes even under -B; one that does not compile (py_compile reports it on stderr)
    # fails its import below if it is imported at all, as with uv's --compile-bytecode.
    import py_compile
    if len(compile_files) > 400 and (os.cpu_count() or 1) > 1:
        # Many files (a large package bumped): in parallel, as uv's --compile-bytecode does. The
        # function is a module's, so it pickles under spawn and forkserver too.
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor() as pool:
            list(pool.map(py_compile.compile, compile_files, chunksize=64))
    else:
        for path in compile_files:
            py_compile.compile(path)
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
    env_dir: Path,
    modules: Sequence[str],
    scripts: Sequence[str],
    *,
    compile_files: Sequence[str] | None = None,
    timeout: float = 300,
) -> dict[str, Any]:
    """Run the checks; return what the interpreter said about itself, or raise SmokeCheckError.

    ``compile_files``: compile these (absolute paths) first."""
    python = env_dir / "bin" / "python"
    payload = json.dumps([list(modules), list(scripts), str(env_dir / "bin"), list(compile_files or ())])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    # -I (isolated; it implies -E) and no -B: the bytecode written is sealed with the generation.
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
