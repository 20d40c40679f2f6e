"""The command line. ``main(argv)`` returns the exit code, so tests call it in-process.

Kept free of heavy imports: an unchanged ``deploy`` is answered by :mod:`venvkeeper.cli.fastpath`,
and ``verify`` and ``doctor`` by :mod:`venvkeeper.cli.fastchecks`, before click and the rest of
venvkeeper are loaded.
"""

from __future__ import annotations

import os
import sys

from venvkeeper.core.lazy import lazy
from venvkeeper.gateways import selfexec

TYPE_CHECKING = False  # collections.abc and typing are not imported at run time (timed paths)
if TYPE_CHECKING:
    from collections.abc import Sequence

    import click

    from venvkeeper.cli import commands, fastchecks, fastdeploy, fastheal, fastpath, render
    from venvkeeper.core import exitcodes
else:
    # Each fast path loads only its own module; the rest is for click's commands.
    fastpath = lazy("venvkeeper.cli.fastpath")
    fastdeploy = lazy("venvkeeper.cli.fastdeploy")
    fastchecks = lazy("venvkeeper.cli.fastchecks")
    fastheal = lazy("venvkeeper.cli.fastheal")
    render = lazy("venvkeeper.cli.render")
    click = lazy("click")
    commands = lazy("venvkeeper.cli.commands")
    exitcodes = lazy("venvkeeper.core.exitcodes")

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        # Run as a program: first leave the caller's PYTHONPATH, PYTHONHOME and user site behind
        # (gateways/selfexec.py: another minor's standard library there is "SRE module mismatch").
        selfexec.isolate(sys.argv[1:])
    # Started with stdout or stderr closed (`venvkeeper deploy >&-`): Python sets it to None, and
    # the work must still be done and its exit code returned, with nobody to tell.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    code = _main(list(sys.argv[1:] if argv is None else argv))
    # Flushed here, not at exit: a reader gone by now (`| head -1`) must not turn the exit code
    # into 120 (render.discard_stdout).
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        render.discard_stdout()
    return code


def _fast(command: str, args: list[str]) -> int | None:
    """Commands answered before click is imported, when their arguments are simple: an unchanged
    ``deploy`` (the common case under cron) from file metadata, any other ``deploy`` without click,
    and ``verify`` and ``doctor``, which are timed as whole commands (monitoring runs them often).
    None hands over to click."""
    if command == "deploy":
        code = fastpath.try_noop(args)
        return code if code is not None else fastdeploy.deploy(args)
    if command == "verify":
        return fastchecks.verify(args)
    if command == "doctor":
        return fastchecks.doctor(args)
    if command == "heal":
        return fastheal.heal_if_needed(args)
    return None


def _main(args: list[str]) -> int:
    code = _fast(args[0], args[1:]) if args else None
    if code is not None:
        return code
    try:
        commands.cli.main(args=args, prog_name="venvkeeper", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return int(exitcodes.ExitCode.FAILED)
    except click.ClickException as exc:
        exc.show()
        return int(exitcodes.ExitCode.BAD_INPUT)
    return 0
