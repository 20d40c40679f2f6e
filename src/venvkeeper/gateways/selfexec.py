"""venvkeeper's own start-up, immune to the caller's interpreter settings.

A hosting platform sets ``PYTHONPATH`` for its users' code, and it may name another minor's standard
library (``/nix/store/<hash>-python3-3.10.13/lib/python3.10`` while venvkeeper runs on 3.11). Python then
loads ``re`` from there and stops at ``AssertionError: SRE module mismatch`` (``sre_compile`` checks the
C module's magic), or later, at any module that differs between the two minors. ``PYTHONHOME`` and a user
site-packages directory do the same from other places. So :func:`isolate` runs first in
:func:`venvkeeper.cli.main.main`: when one of them is in effect, the process is replaced by
``python -I -c <venvkeeper's main> ...`` with those variables removed (``-I``: no ``PYTHON*``
variable, no user site, no current directory on ``sys.path``). The check reads ``os.environ`` and
``sys`` only, both loaded before any module a foreign path could replace, and costs nothing when
nothing is set.

The processes venvkeeper starts (uv, the interpreters it asks questions, hooks) inherit the cleaned
environment; :func:`clean_environ` gives the same for a process started from a library call.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time (every command's start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["START_UP_VARIABLES", "clean_environ", "foreign_settings", "isolate"]

# The variables that change which modules an interpreter loads, or from where.
START_UP_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PYTHONPLATLIBDIR",
    "PYTHONEXECUTABLE",
    "PYTHONSAFEPATH",
)
# Those that change what this process loads. PYTHONUSERBASE only moves the user site (judged by whether
# it is on sys.path: a venv ignores it) and PYTHONSTARTUP only acts on an interactive prompt, so they
# alone cost no second start-up (a platform that sets PYTHONUSERBASE=~/.pythonlibs heals at each login).
_LOADING = ("PYTHONPATH", "PYTHONHOME", "PYTHONPLATLIBDIR", "PYTHONEXECUTABLE")


def clean_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) without :data:`START_UP_VARIABLES`."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if k not in START_UP_VARIABLES}


def foreign_settings() -> list[str]:
    """What makes this interpreter load modules from where the caller said: variable names, and
    ``user site-packages`` when that directory is on ``sys.path``."""
    if sys.flags.isolated:  # -I: Python ignored them all (this is the re-executed process)
        return []
    found = [name for name in _LOADING if os.environ.get(name)]
    site = sys.modules.get("site")
    user_site = getattr(site, "USER_SITE", None)
    if user_site and not sys.flags.no_user_site and user_site in sys.path:
        found.append("user site-packages")
    return found


# The re-executed program. Not ``-m venvkeeper``: venvkeeper may have been found through the very
# PYTHONPATH being dropped (a checkout's src/), or a zip on sys.path[0]; its own directory is put back
# on the isolated path, and nothing else of the caller's.
_PROGRAM = """import sys
root = {root!r}
if root not in sys.path:
    sys.path.insert(0, root)
from venvkeeper.cli.main import main
sys.exit(main())
"""


def isolate(args: Sequence[str]) -> None:
    """Replace this process by ``python -I`` running venvkeeper with ``args``, without the caller's
    start-up settings, when there are any; return (doing nothing) when there are none."""
    if not foreign_settings() or not sys.executable:
        return
    # .../site-packages/venvkeeper/gateways/selfexec.py -> .../site-packages
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for name in START_UP_VARIABLES:
        os.environ.pop(name, None)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    program = _PROGRAM.format(root=root)
    os.execv(sys.executable, [sys.executable, "-I", "-c", program, *args])  # noqa: S606
