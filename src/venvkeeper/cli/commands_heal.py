"""``venvkeeper heal``: one environment as before, or a platform's thousands in one call.

One ``--env`` heals and reports it as ever (text, or one JSON object). Several ``--env``, a file of paths
(``--envs-from``) or ``--if-needed`` heal them ``--jobs`` at a time and report one JSON line per
environment and a summary line (text: each one that was not already healthy, then the summary). The exit
code is the worst of them. ``--if-needed`` first looks without starting an interpreter
(:mod:`venvkeeper.doctor.quickcheck`); an environment that looks healthy is left alone and not reported,
so a boot or a run before each package operation prints nothing unless it acts (docs/recipes/heal-at-boot.md).
When every one looks healthy, :mod:`venvkeeper.cli.fastchecks` has answered before click was loaded.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

import click

from venvkeeper.cli import options
from venvkeeper.cli.render import render
from venvkeeper.core.errors import ConfigError, VenvkeeperError
from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.lazy import lazy
from venvkeeper.core.results import JSON_SCHEMA_VERSION

if TYPE_CHECKING:
    from venvkeeper.cli import compose
    from venvkeeper.core.results import Result
    from venvkeeper.doctor import heal as doctor_heal
    from venvkeeper.doctor import quickcheck
    from venvkeeper.generations import results
else:
    compose = lazy("venvkeeper.cli.compose")
    doctor_heal = lazy("venvkeeper.doctor.heal")
    quickcheck = lazy("venvkeeper.doctor.quickcheck")
    results = lazy("venvkeeper.generations.results")

__all__ = ["LINK_ROOT_VARIABLE", "heal", "read_env_list"]

LINK_ROOT_VARIABLE = "VENVKEEPER_LINK_ROOT"


def read_env_list(text: str) -> list[str]:
    """The paths of an ``--envs-from`` file: one a line; blank lines and ``#`` comments skipped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _env_list(source: str) -> list[str]:
    try:
        if source == "-":
            return read_env_list(sys.stdin.read())
        with open(source, encoding="utf-8") as fh:
            return read_env_list(fh.read())
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"{source}: cannot be read: {why}", hint="--envs-from names a file of paths, one a line"
        ) from None


def _fail(error: VenvkeeperError) -> Result:
    raise error


def _guarded(env: str, action: Callable[[], Result]) -> Result:
    """``action``'s result, or its error as a result naming ``env``: one environment never stops the rest."""
    try:
        return action()
    except VenvkeeperError as exc:
        return results.ErrorResult(
            "heal",
            code=exc.code,
            message=exc.message,
            hint=exc.hint,
            detail=exc.detail,
            exit=exc.exit_code,
            extra={**exc.extra, "env": env},
            cause=exc.cause,
        )


def _state(result: Result | None) -> str:
    if result is None:
        return "healthy"
    if isinstance(result, results.ErrorResult):
        return "error"
    if result.exit_code != ExitCode.OK:
        return "not_healed"
    return "healed" if getattr(result, "changed", False) else "healthy"


def _print(result: Result, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), sort_keys=False) + "\n")
    else:
        render(result, as_json=False)
    sys.stdout.flush()


def _summary(counts: dict[str, int], worst: int, seconds: float, as_json: bool) -> None:
    total = sum(counts.values())
    if as_json:
        line = {
            "schema_version": JSON_SCHEMA_VERSION,
            "command": "heal",
            "summary": True,
            "ok": worst == 0,
            "exit_code": worst,
            "environments": total,
            **counts,
            "duration_s": round(seconds, 3),
        }
        sys.stdout.write(json.dumps(line) + "\n")
    else:
        sys.stdout.write(
            f"heal: {total} environment{'s' if total != 1 else ''}: {counts['healthy']} healthy, "
            f"{counts['healed']} healed, {counts['not_healed']} not healed, "
            f"{counts['error']} could not be inspected [{seconds:.2f}s]\n"
        )


def run_batch(
    envs: Sequence[str],
    heal_one: Callable[[str], Result],
    *,
    jobs: int,
    if_needed: bool,
    link_root: str | None,
    as_json: bool,
) -> int:
    """Heal ``envs``, ``jobs`` at a time, printing each as it ends; returns the worst exit code."""
    started = time.monotonic()
    counts = dict.fromkeys(("healthy", "healed", "not_healed", "error"), 0)
    worst = 0

    def one(env: str) -> Result | None:
        if if_needed and quickcheck.looks_healthy(env, link_root):
            return None
        return _guarded(env, lambda: heal_one(env))

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="heal") as pool:
        futures = [pool.submit(one, env) for env in envs]
        for future in as_completed(futures):
            result = future.result()
            state = _state(result)
            counts[state] += 1
            worst = max(worst, 0 if result is None else int(result.exit_code))
            if result is not None and not (if_needed and state == "healthy"):
                _print(result, as_json)
    if not if_needed or counts["healthy"] != len(envs):
        _summary(counts, worst, time.monotonic() - started, as_json)
    return worst


@click.command(cls=options.Command)
@click.option(
    "--env",
    "envs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="The environment's path (repeat it for several).",
)
@click.option(
    "--envs-from",
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="Also heal the environments FILE lists, one path a line ('-': standard input).",
)
@click.option(
    "--jobs",
    metavar="N",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Environments healed at a time.",
)
@click.option(
    "--if-needed",
    is_flag=True,
    help="Look first without starting an interpreter; heal and report only what needs it.",
)
@click.option(
    "--link-root",
    metavar="DIR",
    envvar=LINK_ROOT_VARIABLE,
    show_envvar=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Name the interpreter through DIR/python3.X, a link the platform re-points on an upgrade.",
)
@click.option(
    "--python", "python", metavar="VERSION|PATH", help="Interpreter to heal with: a version (3.12) or a path."
)
@click.option("--dry-run", is_flag=True, help="Say what would be repaired; change nothing.")
@click.option("--force", is_flag=True, help="Heal an environment that says someone else manages it.")
@options.json_option
@options.quiet_option
def heal(
    envs: Sequence[Path],
    envs_from: Path | None,
    jobs: int,
    if_needed: bool,
    link_root: Path | None,
    python: str | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Repair what doctor finds, then check again (exit 0 healthy, 1 something left, 2 cannot inspect)."""
    root = str(link_root) if link_root else None

    def heal_one(env: str) -> Result:
        redeployer = compose.redeploy_for_heal
        return doctor_heal.heal(
            env, redeployer=redeployer, python=python, dry_run=dry_run, force=force, link_root=root
        )

    paths = [str(env) for env in envs]
    try:
        paths += _env_list(str(envs_from)) if envs_from is not None else []
    except ConfigError as unreadable:
        error = unreadable  # the name `unreadable` is cleared when the except block ends
        options.run("heal", as_json, lambda: _fail(error))
    if not paths:
        missing = ConfigError(
            "no environment given" + (f": {envs_from} lists none" if envs_from is not None else ""),
            hint="pass --env PATH (repeat it for several) or --envs-from FILE",
        )
        options.run("heal", as_json, lambda: _fail(missing))
    if len(paths) == 1 and envs_from is None and not if_needed:
        options.run("heal", as_json, lambda: heal_one(paths[0]))
    sys.exit(run_batch(paths, heal_one, jobs=jobs, if_needed=if_needed, link_root=root, as_json=as_json))
