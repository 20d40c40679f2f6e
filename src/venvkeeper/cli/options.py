"""What the click commands share: the common options, the one way a command runs and reports, and the
group whose help shows each command's summary in full (the commands: :mod:`venvkeeper.cli.commands`,
:mod:`venvkeeper.cli.commands_supply`)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click

from venvkeeper.cli.render import report
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.results import Result

__all__ = [
    "Command",
    "Group",
    "check_option",
    "diff_option",
    "env_option",
    "json_option",
    "project_dir",
    "project_option",
    "run",
]

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
check_option = click.option(
    "--check",
    is_flag=True,
    help="Say what would change and change nothing (exit 0: nothing would, 6: something would).",
)
diff_option = click.option(
    "--diff", is_flag=True, help="Also show the package changes as before/after lines (text and JSON)."
)
env_option = click.option(
    "--env", "env", required=True, type=click.Path(path_type=Path), help="The environment's path (a symlink)."
)


project_option = click.option(
    "--project",
    "project",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="The project directory (the same as PROJECT_DIR; default: the current directory).",
)


def run(command: str, as_json: bool, action: Callable[[], Result]) -> NoReturn:
    sys.exit(int(report(command, as_json, action)))


def project_dir(command: str, as_json: bool, positional: Path | None, option: Path | None) -> Path:
    """The project directory, as PROJECT_DIR or --project DIR (verify's name for it); both is refused
    (one error line, exit 2) rather than one of them silently winning."""
    if positional is not None and option is not None:
        run(command, as_json, functools.partial(_given_twice, positional, option))
    return positional or option or Path(".")


def _given_twice(positional: Path, option: Path) -> Result:
    raise ConfigError(
        f"the project directory is given twice: PROJECT_DIR {positional} and --project {option}",
        hint="give one of them",
    )


class Command(click.Command):
    """A command whose summary in ``venvkeeper --help`` is its docstring's first line in full (wrapped):
    click would cut it to the width left beside the names (about 65 columns) and end it with "..."."""

    def get_short_help_str(self, limit: int = 45) -> str:
        if self.short_help or not self.help:
            return super().get_short_help_str(limit)
        return self.help.split("\n\n", 1)[0].replace("\n", " ").strip()


class Group(click.Group):
    command_class = Command
