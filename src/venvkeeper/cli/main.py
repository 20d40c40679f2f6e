"""The command line. ``main(argv)`` returns the exit code, so tests call it in-process.

Kept free of heavy imports: an unchanged ``deploy`` is answered by :mod:`venvkeeper.cli.fastpath`
before click and the rest of venvkeeper are loaded.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # collections.abc and typing are not imported at run time (timed paths)
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


# Commands answered before click is imported, when their arguments are simple: an unchanged
# `deploy` (the common case under cron) from file metadata, and `verify` and `doctor`, which are
# timed as whole commands (monitoring runs them often). Each returns None to hand over to click.
_FAST_PATHS = {
    "deploy": ("venvkeeper.cli.fastpath", "try_noop"),
    "verify": ("venvkeeper.verify.check", "main"),
    "doctor": ("venvkeeper.doctor.examine", "main"),
}


def main(argv: Sequence[str] | None = None) -> int:
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
        from venvkeeper.cli.render import discard_stdout  # noqa: PLC0415

        discard_stdout()
    return code


def _main(args: list[str]) -> int:
    fast = _FAST_PATHS.get(args[0]) if args else None
    if fast is not None:
        module, name = fast
        code: int | None = getattr(__import__(module, fromlist=[name]), name)(args[1:])
        if code is not None:
            return code
    import click  # noqa: PLC0415

    from venvkeeper.cli.commands import cli  # noqa: PLC0415
    from venvkeeper.core.exitcodes import ExitCode  # noqa: PLC0415

    try:
        cli.main(args=args, prog_name="venvkeeper", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return int(ExitCode.FAILED)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.BAD_INPUT)
    return 0
