"""The command line. ``main(argv)`` returns the exit code, so tests call it in-process.

Kept free of heavy imports: an unchanged ``deploy`` is answered by :mod:`venvkeeper.fastpath`
before click and the rest of venvkeeper are loaded.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # collections.abc and typing are not imported at run time (timed paths)
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["deploy"]:
        # The common case under cron: nothing changed. Answer from file metadata before loading click.
        from venvkeeper.fastpath import try_noop  # noqa: PLC0415

        code = try_noop(args[1:])
        if code is not None:
            return code
    elif args[:1] == ["verify"]:
        # Timed as a whole (monitoring runs it often): parsed and run without click when possible.
        from venvkeeper.verify import main as verify_main  # noqa: PLC0415

        code = verify_main(args[1:])
        if code is not None:
            return code
    import click  # noqa: PLC0415

    from venvkeeper.commands import cli  # noqa: PLC0415
    from venvkeeper.exitcodes import ExitCode  # noqa: PLC0415

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
