"""``heal --if-needed`` answered before click is imported, when every environment looks healthy.

Run at boot and before each package operation (docs/recipes/heal-at-boot.md), it must cost little more
than the interpreter's own start-up (< 60 ms, bench/heal_boot_bench.py): this module and what it loads
import ``os`` and ``sys`` and nothing else, not even ``re`` or ``json``; it prints nothing.
"""

from __future__ import annotations

import os

from venvkeeper.cli import argv
from venvkeeper.doctor import quickcheck

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["heal_if_needed"]

# heal's --link-root default (cli/commands_heal.py gives it to click).
_LINK_ROOT_VARIABLE = "VENVKEEPER_LINK_ROOT"


def heal_if_needed(args: Sequence[str]) -> int | None:
    """``venvkeeper heal --if-needed ...`` when every environment looks healthy: exit 0, print nothing
    (at boot and before each package operation: docs/recipes/heal-at-boot.md). None otherwise: click's
    heal then looks again and heals what needs it."""
    parsed = argv.parse(
        args,
        values={"--env", "--envs-from", "--link-root", "--jobs"},
        flags={"--if-needed", "--json", "-q", "--quiet"},
        repeatable={"--env"},
    )
    jobs = str(parsed.get("--jobs", "1")) if parsed is not None else ""
    if parsed is None or not parsed.get("--if-needed") or not (jobs.isdigit() and 1 <= int(jobs) <= 64):
        return None  # click's heal says what is wrong with --jobs
    envs = [str(env) for env in parsed["--env"]]  # type: ignore[attr-defined]
    listed = parsed.get("--envs-from")
    if listed is not None:
        if listed == "-":
            return None  # stdin can be read once: click's heal reads it
        try:
            with open(str(listed), encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return None  # click's heal says why, in its words
        envs += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    root = parsed.get("--link-root") or os.environ.get(_LINK_ROOT_VARIABLE) or None
    link_root = None if root is None else str(root)
    if not envs or not all(quickcheck.looks_healthy(env, link_root) for env in envs):
        return None
    return 0
