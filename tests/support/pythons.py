"""Nix- and Homebrew-style interpreters for the doctor/heal tests.

A "store" interpreter is a copy of a real CPython executable under a path of the test's choosing,
with the standard library shared by a symlink (the copy finds its ``lib/pythonX.Y`` beside it, and
``libpython`` through the executable's RUNPATH). Moving or replacing the store directory then does
to an environment built on it exactly what a Nix or Homebrew upgrade does.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .interpreter import find_python

__all__ = ["install_store_python", "real_python"]


def real_python(minor: str) -> Path | None:
    """The executable of a real CPython ``minor`` on this machine (``None`` when there is none)."""
    return find_python(minor)


def install_store_python(store: Path, source: Path, name: str | None = None) -> Path:
    """Put a copy of ``source`` (a real ``.../bin/pythonX.Y``) at ``store/bin/<name>``.

    ``name`` defaults to ``pythonX.Y``. An existing store is replaced in place (its ``bin/<name>``
    and ``lib``), which is what an interpreter upgrade under a fixed path looks like.
    """
    match = re.fullmatch(r"python(\d+\.\d+)", source.name)
    if match is None:
        raise ValueError(f"{source}: expected an executable named pythonX.Y")
    target = store / "bin" / (name or source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    shutil.copy2(source, target)
    lib = store / "lib"
    if lib.is_symlink():
        lib.unlink()
    lib.symlink_to(source.resolve().parent.parent / "lib", target_is_directory=True)
    return target
