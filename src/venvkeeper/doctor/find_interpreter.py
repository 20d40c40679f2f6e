"""Which interpreter heal repairs with: the one ``--python`` names, else the one the environment was for.

The environment's own records are asked first (``pyvenv.cfg``'s home, the interpreter its scripts name,
the minor its packages were installed for), then PATH and pyenv, and uv's managed Pythons last (asking
uv is a process of its own).
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from venvkeeper.core.errors import InterpreterError
from venvkeeper.core.lazy import lazy
from venvkeeper.doctor import healplan
from venvkeeper.doctor.diagnosis import Problem
from venvkeeper.doctor.envfacts import Facts
from venvkeeper.project import interpreters

if TYPE_CHECKING:
    from venvkeeper.generations import engine
else:  # uv's gateway: only when no interpreter is found elsewhere
    engine = lazy("venvkeeper.generations.engine")

__all__ = ["choose_interpreter", "requested"]


def _wanted_minor(facts: Facts) -> str | None:
    if facts.packages_python:
        return facts.packages_python
    values = facts.cfg.values if facts.cfg is not None else {}
    version = values.get("version_info") or values.get("version")
    if version:
        return ".".join(version.split(".")[:2])
    return facts.interpreter.minor if facts.interpreter is not None else None


def _hints(facts: Facts, minor: str) -> list[str]:
    values = facts.cfg.values if facts.cfg is not None else {}
    home = values.get("home")
    # home first: doctor's repair for a link to a foreign interpreter is "back to home's".
    hints = [f"{home}/python{minor}", f"{home}/python3", f"{home}/python"] if home else []
    hints += [facts.base_interpreter or "", values.get("executable", "")]
    hints += [script.interpreter for script in facts.scripts]
    return [h for h in dict.fromkeys(hints) if h]


def _search(facts: Facts, minor: str) -> interpreters.Interpreter | None:
    implementation = (facts.cfg.values.get("implementation", "CPython") if facts.cfg else "CPython").lower()
    found = interpreters.find(minor, _hints(facts, minor), implementation=implementation)
    if found is None:  # uv is asked last: it is a process of its own
        found = interpreters.find(
            minor, (), implementation=implementation, uv_python_dir=engine.python_install_dir()
        )
    return found


def requested(facts: Facts, request: str) -> interpreters.Interpreter:
    """The interpreter --python names: a path that must run, or a version to look for."""
    if not healplan.is_version_request(request):
        found = interpreters.probe(os.path.abspath(request))
        if found is None:
            raise InterpreterError(
                f"--python {request}: does not run",
                hint="pass a working interpreter, e.g. /usr/bin/python3.12",
            )
        return found
    found = _search(facts, request)
    if found is None:
        raise InterpreterError(
            f"--python {request}: no CPython {request} found on PATH, under pyenv or among uv's Pythons",
            hint=f"install it (pyenv install {request}, uv python install {request}) or pass its path",
        )
    return found


def choose_interpreter(
    facts: Facts, problems: list[Problem], request: str | None
) -> interpreters.Interpreter | None:
    """The interpreter heal needs, or None when the repairs need none (or none was found)."""
    codes = {p.code for p in problems if p.severity != "note"}
    if request:
        return requested(facts, request)
    if "version-mismatch" in codes and facts.base_interpreter:
        return interpreters.probe(facts.base_interpreter)  # the new minor the environment now runs
    if not codes & (healplan.INTERPRETER_CODES | {"not-a-venv"}):
        return None
    minor = _wanted_minor(facts)
    if minor is not None:
        return _search(facts, minor)
    # A --target directory does not say which Python it is for: the one its scripts start, else python3.
    candidates = [*_hints(facts, "3"), shutil.which("python3") or ""]
    return next((found for c in candidates if c and (found := interpreters.probe(c))), None)
