"""Smoke-check a freshly built environment before anything points at it.

One run of the new interpreter: it compiles the environment's bytecode, then checks that it starts,
every member's top-level packages import, and every console script the members declare exists, is
executable and names this interpreter.

Bytecode (docs/bytecode.md): the environment's own interpreter compiles (venvkeeper's may be another
minor), every module of site-packages, as checked-hash ``.pyc`` files (PEP 552: CPython loads one only
while its source hashes as it says), at optimization level 0, on two workers at most. A clone carries
its predecessor's sealed bytecode by link, so only the modules without any (the delta's) are compiled
then. Nothing else is written afterwards (the imports run with ``sys.dont_write_bytecode``): the seal
that follows (:func:`venvkeeper.generations.manifest.seal_bytecode`) records exactly what was compiled,
before the switch, and the application's first start is warm.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from venvkeeper.core.errors import SmokeCheckError
from venvkeeper.gateways.python import DidNotRunError, run_python

__all__ = ["MARKERS_SNIPPET", "TAG_FACTS_SNIPPET", "interpreter_facts", "marker_environment", "smoke_check"]

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

# What packaging.tags reads from the running interpreter to build its wheel tags (sys_tags()), asked of
# the interpreter a generation runs instead (venvkeeper.project.wheeltags builds the tags from it):
# standard library only, since that interpreter need not have packaging.
TAG_FACTS_SNIPPET = r"""
import os, platform, sys, sysconfig
def _glibc():
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or None
    except (AttributeError, OSError, ValueError):
        return None
tag_facts = {
    "implementation": sys.implementation.name,
    "version": list(sys.version_info[:2]),
    "py_version_nodot": sysconfig.get_config_var("py_version_nodot"),
    "py_debug": sysconfig.get_config_var("Py_DEBUG"),
    "gettotalrefcount": hasattr(sys, "gettotalrefcount"),
    "gil_disabled": sysconfig.get_config_var("Py_GIL_DISABLED"),
    "with_pymalloc": sysconfig.get_config_var("WITH_PYMALLOC"),
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    "soabi": sysconfig.get_config_var("SOABI"),
    "platform": sysconfig.get_platform(),
    "system": platform.system(),
    "machine": platform.machine(),
    "is_32bit": sys.maxsize <= 2**32,
    "glibc": _glibc(),
    "mac_version": platform.mac_ver()[0],
}
"""

_SCRIPT = (
    MARKERS_SNIPPET
    + r"""
import importlib, json, os, shlex, sys
modules, scripts, bindir, compiling = json.loads(sys.argv[1])
failures = []
if compiling is not None:
    import importlib.util, py_compile
    from functools import partial
    roots, everything = compiling
    todo = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                if everything:
                    # Bytecode of -O and -OO runs left in an environment filled again: not compiled here,
                    # so not sealed; CPython writes it afresh under -O.
                    for level in (1, 2):
                        try:
                            os.unlink(importlib.util.cache_from_source(path, optimization=level))
                        except OSError:
                            pass
                elif os.path.exists(importlib.util.cache_from_source(path)):
                    continue  # linked from the live generation, sealed there beside this very source
                todo.append(path)
    # Checked-hash (PEP 552): CPython loads it only while the source's hash is the one it holds. One
    # that does not compile (quiet: py_compile says nothing) fails its import below if imported at all.
    job = partial(py_compile.compile, quiet=2, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    workers = min(2, os.cpu_count() or 1)  # the deploy's other work (the seal) uses the second core
    if len(todo) > 200 and workers > 1:
        # The function is a module's (a partial of it), so it pickles under spawn and forkserver too.
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(job, todo, chunksize=32))
    else:
        for path in todo:
            job(path)
# From here on nothing is written: the bytecode sealed is exactly what was compiled above.
sys.dont_write_bytecode = True
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
    # Its directory too: every environment's bin/python resolves to the same base interpreter, so a
    # script naming another generation's python would pass the first test and run that generation.
    if (
        interp is None
        or os.path.realpath(interp) != me
        or os.path.realpath(os.path.dirname(interp)) != os.path.realpath(bindir)
    ):
        failures.append(f"console script {script}: runs {interp!r}, not this environment's python")
print(json.dumps({
    "failures": failures,
    "version": "%d.%d.%d" % sys.version_info[:3],
    "implementation": sys.implementation.name,
    "base_executable": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
    "base_prefix": sys.base_prefix,
    "cache_tag": sys.implementation.cache_tag or "",
    "markers": markers,
}))
"""
)


def smoke_check(
    env_dir: Path,
    modules: Sequence[str],
    scripts: Sequence[str],
    *,
    compile_all: bool | None = True,
    timeout: float = 300,
) -> dict[str, Any]:
    """Run the checks; return what the interpreter said about itself, or raise SmokeCheckError.

    ``compile_all``: first compile every module of site-packages (True), or those that have no
    bytecode yet (False: a clone, whose linked bytecode is sealed beside its linked source), or none
    (None)."""
    python = env_dir / "bin" / "python"
    roots = sorted(str(p) for p in env_dir.glob("lib/*/site-packages") if p.is_dir() and not p.is_symlink())
    compiling = None if compile_all is None else [roots, compile_all]
    payload = json.dumps([list(modules), list(scripts), str(env_dir / "bin"), compiling])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    # -I (isolated; it implies -E, so PYTHONDONTWRITEBYTECODE is not read), no -B: the script compiles,
    # then stops writing bytecode itself.
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


# interpreter_facts' answers: (path, realpath, inode, size, mtime) -> (markers, tag facts).
_FACTS: dict[tuple[str, str, int, int, int], tuple[dict[str, str], dict[str, Any]]] = {}


def interpreter_facts(python: Path) -> tuple[dict[str, str], dict[str, Any]] | None:
    """An interpreter's environment markers and the facts its wheel tags are built from
    (:data:`TAG_FACTS_SNIPPET`), in one run of it; None if it does not run. Kept while the
    interpreter's file is the same (by stat): a command asking twice runs it once."""
    try:
        st = python.stat()  # follows the links: a venv's bin/python is its base interpreter's file
    except OSError:
        return None
    key = (str(python), os.path.realpath(python), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _FACTS:
        program = MARKERS_SNIPPET + TAG_FACTS_SNIPPET + "import json; print(json.dumps([markers, tag_facts]))"
        try:
            proc = run_python(python, ["-I", "-B"], program, timeout=60)
            markers, facts = json.loads(proc.stdout)
        except (DidNotRunError, ValueError, TypeError):
            return None  # not kept: the next question runs it again
        _FACTS[key] = (markers, facts)
    markers, facts = _FACTS[key]
    return dict(markers), dict(facts)


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
