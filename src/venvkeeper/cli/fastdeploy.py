"""A deploy the no-op stamp cannot answer, run without click when its arguments are simple.

Importing click costs a deploy 15-25 ms before its first uv call (``python -X importtime``; a cold
deploy of examples/webapp takes about a second, a member change well under one). The arguments are
those of click's ``deploy`` command (``cli/commands.py``), parsed by :mod:`venvkeeper.cli.argv`;
anything else (``--help``, a typo, a missing or empty value, a path click's ``click.Path`` would
refuse) returns None, and click parses the same arguments and answers as it always did. The request
and its report are the ones ``commands.deploy`` makes; ``tests/test_fastdeploy.py`` compares them.
Loaded only when the no-op fast path could not answer (``cli/main.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from venvkeeper.cli import argv
from venvkeeper.core.lazy import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from venvkeeper.cli import render
    from venvkeeper.deploy import converge
else:
    converge = lazy("venvkeeper.deploy.converge")
    render = lazy("venvkeeper.cli.render")

__all__ = ["deploy"]

_VALUES = {"--env", "--project", "--group", "--python", "--keep"}
_FLAGS = {"--json", "--no-wait", "--no-rollback", "--no-hooks", "--in-place", "--repair", "--check", "--diff"}


def deploy(args: Sequence[str]) -> int | None:
    """``venvkeeper deploy ARGS`` without click (its exit code); None when click must parse them."""
    found = argv.parse(args, values=_VALUES, flags=_FLAGS, repeatable={"--group"}, max_positional=1)
    request = _request(found) if found is not None else None
    if found is None or request is None:
        return None
    return int(render.report("deploy", "--json" in found, lambda: converge.deploy(request)))


def _request(found: dict[str, object]) -> converge.DeployRequest | None:
    if "--env" not in found:
        return None
    positional: list[str] = found["positional"]  # type: ignore[assignment]
    groups: list[str] = found["--group"]  # type: ignore[assignment]
    env, keep, python = str(found["--env"]), found.get("--keep"), found.get("--python")
    if positional and "--project" in found:
        return None  # given twice: click's deploy words the refusal
    project = str(found.get("--project", positional[0] if positional else "."))
    if "" in (env, project, python, *groups):
        return None  # click has its own view of an empty value
    if keep is not None and not str(keep).isdigit():
        return None  # click.IntRange(min=0) words the refusal
    if not _click_path_ok(project, directory=True) or not _click_path_ok(env, directory=False):
        return None
    return converge.DeployRequest(
        project_dir=Path(project),
        env=Path(env),
        groups=tuple(groups) if groups else None,
        python=None if python is None else str(python),
        keep=None if keep is None else int(str(keep)),
        in_place="--in-place" in found,
        wait="--no-wait" not in found,
        rollback_on_hook_failure="--no-rollback" not in found,
        repair="--repair" in found,
        run_hooks="--no-hooks" not in found,
        check="--check" in found,
        diff="--diff" in found,
    )


def _click_path_ok(path: str, *, directory: bool) -> bool:
    """What ``click.Path`` (exists=False, readable=True; ``file_okay=False`` for a directory) accepts:
    a path that does not exist, or one that is readable (and for a directory, not a regular file)."""
    try:
        is_file = os.path.isfile(path)
        exists = os.path.exists(path)
    except (OSError, ValueError):
        return False
    if not exists:
        return True
    if directory and is_file:
        return False
    return os.access(path, os.R_OK)
