"""Python interpreters: ask one what it is, and find one of a given minor version on this machine.

An interpreter is asked by running it (``-I -S``: no site, no user paths, so a broken environment's
packages cannot get in the way); its file name is not trusted, because a Nix or Homebrew upgrade
replaces what a fixed path runs.
"""

from __future__ import annotations

import os
import re

from venvkeeper.gateways.python import DidNotRunError, run_python

TYPE_CHECKING = False  # doctor is timed: typing is not imported at run time
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["Interpreter", "candidates", "find", "probe"]

_PROBE = (
    "import sys, importlib.machinery as m\n"
    "print(sys.implementation.name)\n"
    "print('%d.%d.%d' % sys.version_info[:3])\n"
    "print(sys.executable)\n"
    "print(getattr(sys, 'abiflags', ''))\n"
    "print(' '.join(m.EXTENSION_SUFFIXES))\n"
    "print(getattr(sys, '_base_executable', sys.executable))\n"
    "print(sys.base_prefix)\n"
    # Without site (-S), sys.prefix is not switched to a venv; _base_executable is (from pyvenv.cfg).
    "print(int(getattr(sys, '_base_executable', sys.executable) != sys.executable))\n"
)


class Interpreter:
    def __init__(
        self,
        path: str,
        implementation: str,
        version: str,
        executable: str,
        abiflags: str,
        ext: list[str],
        base_prefix: str = "",
        in_venv: bool = False,
    ) -> None:
        self.path = path  # as found (a store path stays a store path: it is what links should name)
        self.implementation = implementation  # "cpython", "pypy"
        self.version = version  # "3.11.7"
        self.executable = executable  # sys.executable
        self.abiflags = abiflags  # "t" for a free-threaded build
        self.extension_suffixes = ext
        self.base_prefix = base_prefix
        self.in_venv = in_venv  # the bin/python of some virtual environment, not an interpreter itself

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def describe(self) -> str:
        name = {"cpython": "CPython", "pypy": "PyPy"}.get(self.implementation, self.implementation)
        return f"{name} {self.version}{self.abiflags}"

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "version": self.version, "implementation": self.implementation}


def probe(path: str, timeout: float = 10) -> Interpreter | None:
    """What ``path`` runs, or None when it does not run (dangling, not executable, broken)."""
    try:
        proc = run_python(
            path,
            ["-I", "-S"],
            _PROBE,
            timeout=timeout,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        )
    except DidNotRunError:
        return None
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) < 8:
        return None
    implementation, version, executable, abiflags, suffixes, base, base_prefix, in_venv = lines[:8]
    if in_venv == "1":
        # Another environment's bin/python: link what it runs, not it (home must be an interpreter's).
        return Interpreter(base, implementation, version, base, abiflags, suffixes.split(), base_prefix, True)
    if _is_script(path):
        # A pyenv or asdf shim, or a wrapper script: a venv must link the executable it ends up running.
        path = executable
    return Interpreter(path, implementation, version, executable, abiflags, suffixes.split(), base_prefix)


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


def _pyenv_roots() -> list[str]:
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    return [r for r in dict.fromkeys(roots) if r and os.path.isdir(f"{r}/versions")]


def _newest_first(directory: str, pattern: re.Pattern[str]) -> list[str]:
    try:
        names = [n for n in os.listdir(directory) if pattern.fullmatch(n)]
    except OSError:
        return []
    return sorted(names, key=lambda n: [int(x) for x in re.findall(r"\d+", n)], reverse=True)


def candidates(minor: str, hints: Iterable[str] = (), uv_python_dir: str | None = None) -> Iterator[str]:
    """Where a ``minor`` interpreter may be, in the order heal tries them.

    ``hints`` first (what the environment recorded), then ``pythonX.Y`` on PATH, pyenv's builds
    (newest patch first), and uv's managed installs.
    """
    yield from hints
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        if directory and os.access(f"{directory}/python{minor}", os.X_OK):
            yield f"{directory}/python{minor}"
    exact = re.compile(rf"{re.escape(minor)}\.\d+")
    for root in _pyenv_roots():
        for name in _newest_first(f"{root}/versions", exact):
            yield f"{root}/versions/{name}/bin/python{minor}"
    if uv_python_dir:
        managed = re.compile(rf"cpython-{re.escape(minor)}\.\d+[^t]*")
        for name in _newest_first(uv_python_dir, managed):
            yield f"{uv_python_dir}/{name}/bin/python{minor}"


def find(
    minor: str,
    hints: Iterable[str] = (),
    *,
    implementation: str = "cpython",
    uv_python_dir: str | None = None,
) -> Interpreter | None:
    """The first interpreter of ``minor`` (not free-threaded) that runs, or None."""
    seen: set[str] = set()
    for path in candidates(minor, hints, uv_python_dir):
        real = os.path.realpath(path)
        if real in seen or not os.path.exists(real):
            continue
        seen.add(real)
        found = probe(path)
        if (
            found is not None
            and found.minor == minor
            and found.implementation == implementation
            and "t" not in found.abiflags
        ):
            return found
    return None
