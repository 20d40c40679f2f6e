"""``heal --if-needed``'s first look: is anything at all wrong with an environment, from file metadata.

Run at boot and before every package operation, over thousands of environments, so it starts no
interpreter and reads only ``pyvenv.cfg``, the names in ``bin/`` and ``lib/``, the first line of each
script and ``bin/activate``. It answers "looks healthy" only when every link resolves into ``home``,
the interpreter's minor (from its file name, or its prefix's ``lib/pythonX.Y``) is the packages' one,
nothing names another place, and (with a link root) the environment goes through it: ``home`` and every
``bin/python*`` link, followed through the relative ones CPython's venv writes, end under
``DIR/pythonX.Y``. Anything it cannot tell (a ``--copies`` venv, two ``lib/python*``) is "not sure":
the full heal then looks, with doctor's whole diagnosis. Only ``os`` and ``sys``: it is timed
(docs/doctor.md, < 60 ms).
"""

from __future__ import annotations

import os
import sys

__all__ = ["looks_healthy"]


def _minor_of(name: str) -> str | None:
    """``3.11`` for ``python3.11`` or ``python3.13t``; None for any other name."""
    rest = name[6:].removesuffix("t") if name.startswith("python") else ""
    major, dot, minor = rest.partition(".")
    return rest if dot and major.isdigit() and minor.isdigit() else None


def _is_python(name: str) -> bool:
    """python, python3, python3.11, python3.13t (envfacts.is_python_link, without ``re``)."""
    rest = name[6:].removesuffix("t") if name.startswith("python") else "-"
    return rest == "" or (rest.isdigit() and len(rest) == 1) or _minor_of(name) is not None


def _activate_path(text: str) -> str | None:
    """VIRTUAL_ENV as CPython's and uv's bin/activate set it (``VIRTUAL_ENV='/path'``)."""
    for line in text.splitlines():
        if line.startswith("VIRTUAL_ENV="):
            value = line[12:].strip().strip("'\"")
            return value if value.startswith("/") else None
    return None


def _cfg(root: str) -> dict[str, str] | None:
    try:
        with open(f"{root}/pyvenv.cfg", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not eq:
            return None
        values[key.strip()] = value.strip()
    return values


def _minors(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [minor for minor in map(_minor_of, names) if minor]


def _interpreter_minor(real: str) -> list[str]:
    """The minor(s) the interpreter ``real`` may be: its name's, else its prefix's lib/pythonX.Y."""
    named = _minor_of(os.path.basename(real))
    if named:
        return [named]
    return _minors(f"{os.path.dirname(os.path.dirname(real))}/lib")


def _scripts_stay_home(root: str, names: list[str], given: str) -> bool:
    """Every Python script in bin/ starts this environment's interpreter (a moved or copied one's
    name the old place)."""
    mine = f"{root}/bin/"
    # A deployed generation's scripts may name it through the --env symlink.
    accepted = (mine.encode(), f"{given}/bin/".encode())
    for name in names:
        path = mine + name
        if os.path.islink(path) or name.startswith("activate"):
            continue
        try:
            with open(path, "rb") as fh:
                head = fh.read(512)
        except OSError:
            continue
        lines = head.split(b"\n", 2)
        if lines[0].startswith(b"#!/bin/sh") and len(lines) > 1 and lines[1].startswith(b"'''exec'"):
            if not any(a in lines[1] for a in accepted):  # pip and uv's trampoline for a long path
                return False
            continue
        command = lines[0][2:].split(None, 1)[0] if lines[0].startswith(b"#!/") else b""
        is_python = _is_python(os.path.basename(command).decode(errors="replace"))
        if is_python and not command.startswith(accepted):
            return False
    try:
        with open(f"{mine}activate", encoding="utf-8", errors="replace") as fh:
            found = _activate_path(fh.read())
    except OSError:
        return True
    return found is None or os.path.realpath(found) == root


def _links_home(root: str, home: str) -> list[str] | None:
    """bin/'s names when every bin/python* resolves to one of home's interpreters; else None."""
    try:
        names = sorted(os.listdir(f"{root}/bin"))
        homes = {os.path.realpath(f"{home}/{n}") for n in os.listdir(home) if _is_python(n)}
    except OSError:
        return None
    if "python" not in names or not os.path.islink(f"{root}/bin/python"):
        return None  # none, or a --copies venv: not sure
    links = [f"{root}/bin/{n}" for n in names if _is_python(n)]
    if any(os.path.realpath(link) not in homes for link in links):
        return None  # dangling, or not home's interpreter
    return names


def _through(bindir: str, name: str, stable: str) -> bool:
    """Whether bin/``name``'s links end at an absolute path under ``stable``. A relative link names
    another entry of bin/: CPython's venv links ``python -> python3 -> /store/.../python3`` and heal
    re-points only the absolute one, so the look must follow the chain as envfacts does."""
    for _ in range(8):
        try:
            target = os.readlink(f"{bindir}/{name}")
        except OSError:
            return False  # not a link (a --copies venv), or gone: not sure
        if target.startswith("/"):
            return target.startswith(stable)
        if "/" in target:
            return False  # a relative path out of bin/: not what venv or heal write, so not sure
        name = target
    return False  # a loop


def looks_healthy(env: str, link_root: str | None = None) -> bool:
    """True when ``env`` certainly needs no heal (and, with ``link_root``, goes through it)."""
    root = os.path.realpath(env)
    values = _cfg(root)
    home = values.get("home") if values else None
    names = _links_home(root, home) if home and os.path.isdir(home) else None
    minors = _minors(f"{root}/lib")
    python = f"{root}/bin/python"
    if (
        home is None
        or names is None
        or len(minors) != 1
        or minors[0] not in _interpreter_minor(os.path.realpath(python))
    ):
        return False
    if sys.platform == "linux" and sys.maxsize > 2**32 and not os.path.lexists(f"{root}/lib64"):
        return False
    if link_root:
        stable = f"{os.path.abspath(link_root)}/python{minors[0]}/"
        if not (home + "/").startswith(stable):
            return False
        if not all(_through(f"{root}/bin", name, stable) for name in names if _is_python(name)):
            return False
    return _scripts_stay_home(root, names, os.path.abspath(env))
