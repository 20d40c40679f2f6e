"""``venvkeeper run-executable``: a signed executable checked before any of it runs, then run, and
the options ``pack --executable --with-python`` and ``--python-archive`` (declared here, so that
:mod:`venvkeeper.cli.commands` carries two lines for them)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import click

from venvkeeper.cli import options
from venvkeeper.cli.render import report
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.lazy import lazy
from venvkeeper.core.results import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.bundle import exesign
    from venvkeeper.gateways import program
else:
    exesign = lazy("venvkeeper.bundle.exesign")
    program = lazy("venvkeeper.gateways.program")

__all__ = ["carried_python_options", "run_executable"]

F = TypeVar("F", bound=Callable[..., object])


def carried_python_options(command: F) -> F:
    """``pack``'s ``--with-python`` and ``--python-archive``."""
    command = click.option(
        "--python-archive",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="FILE",
        help="With --executable: carry this python-build-standalone install_only archive as its Python.",
    )(command)
    return click.option(
        "--with-python",
        is_flag=True,
        help="With --executable: carry this host's Python (if it can move): the target needs none.",
    )(command)


@click.command("run-executable", cls=options.Command, context_settings={"ignore_unknown_options": True})
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--public-key",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="The signer's Ed25519 public key (venvkeeper keygen's .pub), had from them out of band.",
)
@click.option(
    "--signature",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="The detached signature (default: FILE.sig).",
)
@click.option("--verify-only", is_flag=True, help="Check the signature and run nothing (exit 0: good).")
@options.json_option
def run_executable(
    file: Path,
    args: Sequence[str],
    public_key: Path,
    signature: Path | None,
    verify_only: bool,
    as_json: bool,
) -> None:
    """Run a signed pack --executable file after checking its signature (refused unless it is the key's).

    ARGS after -- go to the program. Its exit status is this command's.
    """
    if verify_only:
        options.run("run-executable", as_json, lambda: exesign.verify_file(file, public_key, signature))
    if as_json:
        options.run("run-executable", as_json, _json_needs_verify_only)
    ran: list[int] = []

    def action() -> Result:
        with exesign.verified_copy(file, public_key, signature) as copy:
            # Through sh, as its #!/bin/sh line says (checked): a noexec TMPDIR cannot stop it.
            ran.append(program.run_program(["/bin/sh", str(copy), *args]))
        return exesign.RanResult(str(file), ran[0])

    code = report("run-executable", as_json, action)
    sys.exit(ran[0] if ran else int(code))


def _json_needs_verify_only() -> Result:
    raise ConfigError(
        "--json is for --verify-only: a program that runs prints its own output",
        hint="add --verify-only, or leave out --json",
    )
