"""``verify`` and ``doctor`` answered before click is imported, when their arguments are simple.

Both are timed as whole commands (monitoring runs them often): this module and what it loads stay
clear of click, pathlib, typing and dataclasses. Each returns None to hand the arguments over to
click, which then parses them again and gives its usual messages.
"""

from __future__ import annotations

from venvkeeper.cli import argv
from venvkeeper.cli.render import report
from venvkeeper.core.lazy import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from venvkeeper.doctor import examine
    from venvkeeper.verify import check
else:
    # One command per process: the other's modules are never loaded.
    examine = lazy("venvkeeper.doctor.examine")
    check = lazy("venvkeeper.verify.check")

__all__ = ["doctor", "verify"]


def verify(args: Sequence[str]) -> int | None:
    """``venvkeeper verify ARGS`` without click; None when the arguments need click's parser."""
    parsed = argv.parse(args, values={"--env", "--project"}, flags={"--fast", "--json"})
    if parsed is None or "--env" not in parsed:
        return None
    env, project = str(parsed["--env"]), parsed.get("--project")
    fast = bool(parsed.get("--fast"))
    action = lambda: check.verify(env, None if project is None else str(project), fast=fast)  # noqa: E731
    return int(report("verify", bool(parsed.get("--json")), action))


def doctor(args: Sequence[str]) -> int | None:
    """``venvkeeper doctor ARGS`` without click; None when the arguments need click's parser."""
    parsed = argv.parse(args, values={"--env"}, flags={"--json"})
    if parsed is None or "--env" not in parsed:
        return None
    env = str(parsed["--env"])
    return int(report("doctor", bool(parsed.get("--json")), lambda: examine.doctor(env)))
