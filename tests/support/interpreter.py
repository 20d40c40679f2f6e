"""Find other CPython interpreters on this machine, for tests that need a given X.Y.

Where to look is read at import time, before the hermetic fixture replaces HOME.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["find_python"]

_REAL_HOME = Path.home()
_PYENV_ROOTS = tuple(
    dict.fromkeys([Path(os.environ.get("PYENV_ROOT", _REAL_HOME / ".pyenv")), _REAL_HOME / ".pyenv"])
)
_PATH = os.environ.get("PATH", os.defpath)
# Written for any Python that a `python3.X` on PATH might turn out to be.
_PROBE = (
    "import platform, sys; sys.stdout.write('%s %d.%d %s' % (platform.python_implementation(), "
    "sys.version_info[0], sys.version_info[1], sys.executable))"
)


def _probe(candidate: Path, minor: str) -> Path | None:
    """The interpreter's own executable if ``candidate`` runs CPython ``minor``."""
    try:
        result = subprocess.run(
            [candidate, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # A pyenv shim for a version that is not selected exits non-zero here.
    if result.returncode != 0:
        return None
    implementation, version, executable = result.stdout.strip().split(" ", 2)
    return Path(executable) if (implementation, version) == ("CPython", minor) else None


@functools.cache
def find_python(minor: str) -> Path | None:
    """CPython ``minor`` (e.g. ``"3.12"``): the newest pyenv build, else ``python3.12`` on PATH.

    Free-threaded builds (``3.13.0t``) are not taken. Use it as::

        python = find_python("3.12") or pytest.skip("CPython 3.12 not found under pyenv or PATH")
    """
    pattern = re.compile(rf"{re.escape(minor)}\.(\d+)")
    for root in _PYENV_ROOTS:
        versions = root / "versions"
        if not versions.is_dir():
            continue
        builds = [entry for entry in versions.iterdir() if pattern.fullmatch(entry.name)]
        for build in sorted(builds, key=lambda entry: int(entry.name.rsplit(".", 1)[1]), reverse=True):
            found = _probe(build / "bin" / f"python{minor}", minor)
            if found is not None:
                return found
    on_path = shutil.which(f"python{minor}", path=_PATH)
    return _probe(Path(on_path), minor) if on_path else None
