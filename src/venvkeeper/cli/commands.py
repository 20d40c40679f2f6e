"""The click commands. :func:`venvkeeper.cli.main.main` is the entry point."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from venvkeeper import __version__
from venvkeeper.cli import commands_lock, options
from venvkeeper.cli.commands_executable import carried_python_options, run_executable
from venvkeeper.cli.commands_heal import heal
from venvkeeper.cli.commands_sbom import sbom
from venvkeeper.cli.commands_supply import audit, receipt
from venvkeeper.core.lazy import lazy

if TYPE_CHECKING:
    from venvkeeper.bundle import export as bundle_export
    from venvkeeper.bundle import install as bundle_install
    from venvkeeper.bundle import installcheck as bundle_installcheck
    from venvkeeper.bundle import keys as bundle_keys
    from venvkeeper.bundle import pack as bundle_pack
    from venvkeeper.cli import advisories, compose
    from venvkeeper.deploy import converge
    from venvkeeper.doctor import examine
    from venvkeeper.generations import status as generation_status
    from venvkeeper.update import result as update_result
    from venvkeeper.update import run as update_run
    from venvkeeper.update import session as update_session
    from venvkeeper.update import store as update_store
    from venvkeeper.verify import check
else:
    # A command loads its own capability only (the bundle's would bring cryptography to a deploy).
    bundle_export = lazy("venvkeeper.bundle.export")
    bundle_install = lazy("venvkeeper.bundle.install")
    bundle_installcheck = lazy("venvkeeper.bundle.installcheck")
    bundle_keys = lazy("venvkeeper.bundle.keys")
    bundle_pack = lazy("venvkeeper.bundle.pack")
    advisories = lazy("venvkeeper.cli.advisories")
    compose = lazy("venvkeeper.cli.compose")
    converge = lazy("venvkeeper.deploy.converge")
    examine = lazy("venvkeeper.doctor.examine")
    generation_status = lazy("venvkeeper.generations.status")
    update_result = lazy("venvkeeper.update.result")
    update_run = lazy("venvkeeper.update.run")
    update_session = lazy("venvkeeper.update.session")
    update_store = lazy("venvkeeper.update.store")
    check = lazy("venvkeeper.verify.check")

__all__ = ["cli"]


@click.group(cls=options.Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="venvkeeper")
def cli() -> None:
    """Keep deployed Python environments exactly what their committed lock says."""


@cli.command()
@click.argument("project_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@options.project_option
@options.env_option
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Also install this dependency group (repeatable).",
)
@click.option("--python", "python", metavar="VERSION|PATH", help="Interpreter: a version (3.12) or a path.")
@click.option(
    "--keep", type=click.IntRange(min=0), metavar="N", help="Previous generations to keep (default 3)."
)
@click.option("--in-place", is_flag=True, help="Converge --env itself instead of switching generations.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another deploy holds the environment.")
@click.option("--no-rollback", is_flag=True, help="Keep the new generation live when a hook fails.")
@click.option("--no-hooks", is_flag=True, help="Run no post-deploy hook ([tool.venvkeeper.hooks]).")
@click.option(
    "--repair",
    is_flag=True,
    help="Verify the live environment; if it differs, rebuild it with uv's cache refreshed.",
)
@options.check_option
@options.diff_option
@commands_lock.deploy_options
@options.json_option
@options.quiet_option
def deploy(
    project_dir: Path | None,
    project: Path | None,
    env: Path,
    groups: Sequence[str],
    python: str | None,
    keep: int | None,
    in_place: bool,
    no_wait: bool,
    no_rollback: bool,
    no_hooks: bool,
    repair: bool,
    check: bool,
    diff: bool,
    pylock: Path | None,
    hook_commands: Sequence[str],
    hooks_dir: Path | None,
    as_json: bool,
) -> None:
    """Converge --env on PROJECT_DIR's uv.lock, or on a pylock.toml alone (never writing into PROJECT_DIR)."""
    if pylock is not None:
        hooks = commands_lock.Hooks(tuple(hook_commands), hooks_dir, not no_rollback, not no_hooks)
        commands_lock.refuse_with_lock(project_dir or project, in_place=in_place)
        commands_lock.deploy(
            pylock, env, tuple(groups), python, keep, not no_wait, hooks, check, as_json, diff, repair=repair
        )
    request = converge.DeployRequest(
        project_dir=options.project_dir("deploy", as_json, project_dir, project),
        env=env,
        groups=tuple(groups) if groups else None,
        python=python,
        keep=keep,
        in_place=in_place,
        wait=not no_wait,
        rollback_on_hook_failure=not no_rollback,
        repair=repair,
        run_hooks=not no_hooks,
        check=check,
        diff=diff,
    )
    options.run("deploy", as_json, lambda: converge.deploy(request))


@cli.command()
@options.env_option
@click.option(
    "--to", "to", type=int, metavar="N", help="Generation number to switch to (default: the one before)."
)
@click.option("--no-wait", is_flag=True, help="Fail at once if another venvkeeper holds the environment.")
@options.json_option
def rollback(env: Path, to: int | None, no_wait: bool, as_json: bool) -> None:
    """Switch --env back to a previous generation, atomically."""
    options.run("rollback", as_json, lambda: generation_status.rollback(env, to=to, wait=not no_wait))


@cli.command()
@options.env_option
@options.json_option
def status(env: Path, as_json: bool) -> None:
    """List the live and kept generations of --env."""
    options.run("status", as_json, lambda: generation_status.status(env))


@cli.command()
@options.env_option
@click.option(
    "--project",
    "project",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Also check against this project's current lock, member sources and git status.",
)
@click.option("--fast", is_flag=True, help="Sizes and presence only (no hashing), for frequent monitoring.")
@click.option(
    "--receipt",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Also prove the live generation is the one this signed receipt names (with --public-key).",
)
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="The receipt signer's public key (its signature is checked first).",
)
@commands_lock.verify_option
@options.json_option
def verify(
    env: Path,
    project: Path | None,
    fast: bool,
    receipt: Path | None,
    public_key: Path | None,
    pylock: Path | None,
    as_json: bool,
) -> None:
    """Prove --env is exactly what its lock says, file by file (exit 0 clean, 1 findings, 2 cannot verify)."""
    if pylock is not None:
        commands_lock.verify(env, pylock, fast=fast, as_json=as_json)
    named = None if project is None else str(project)
    options.run(
        "verify",
        as_json,
        lambda: check.verify(str(env), named, fast=fast, receipt=receipt, public_key=public_key),
    )


@cli.command()
@options.env_option
@options.json_option
def doctor(env: Path, as_json: bool) -> None:
    """Diagnose a broken environment or package directory (exit 0 healthy, 1 findings, 2 cannot inspect)."""
    options.run("doctor", as_json, lambda: examine.doctor(str(env)))


@cli.command()
@click.argument("project_dir", required=False, type=click.Path(path_type=Path))
@options.project_option
@options.env_option
@click.option(
    "--policy",
    type=click.Choice(["patch", "minor", "major"]),
    help="How far versions may move (default: [tool.venvkeeper.update] policy, else patch).",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Update and deploy this dependency group (repeatable).",
)
@click.option(
    "--test-command", "test_command", metavar="CMD", help="Shell command that must pass on the candidate."
)
@click.option(
    "--test-timeout",
    "test_timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Seconds.",
)
@click.option(
    "--branch", metavar="NAME", help="The branch PROJECT_DIR must be on (default: config, else main)."
)
@click.option("--dry-run", is_flag=True, help="Show what would be updated; commit, deploy and mail nothing.")
@click.option("--no-push", is_flag=True, help="Commit the tested lock but do not push it.")
@click.option("--history", "show_history", is_flag=True, help="List the past runs for --env and exit.")
@click.option(
    "--osv", metavar="URL|PATH", help="Advisories (as audit's --osv): hold back vulnerable versions."
)
@options.json_option
@options.quiet_option
def update(
    project_dir: Path | None,
    project: Path | None,
    env: Path,
    policy: str | None,
    groups: Sequence[str],
    test_command: str | None,
    test_timeout: float | None,
    branch: str | None,
    dry_run: bool,
    no_push: bool,
    show_history: bool,
    osv: str | None,
    as_json: bool,
) -> None:
    """Take the updates --policy allows, test them off-line, then commit, push, deploy and mail."""
    if show_history:
        store = update_store.UpdateStore.for_env(env)
        options.run(
            "update-history",
            as_json,
            lambda: update_result.HistoryResult(env=str(env), path=str(store.history), entries=store.read()),
        )
    request = update_session.UpdateRequest(
        project_dir=options.project_dir("update", as_json, project_dir, project),
        env=env,
        policy=policy,
        groups=tuple(groups) if groups else None,
        test_command=test_command,
        test_timeout=test_timeout,
        branch=branch,
        dry_run=dry_run,
        push=not no_push,
        advisories=advisories.for_update(osv),
    )
    options.run("update", as_json, lambda: update_run.update(request, compose.ship_with_deploy))


@cli.command()
@click.argument("project_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@options.project_option
@click.option(
    "--format",
    "fmt",
    # uv export's names too (pylock.toml, requirements.txt), so a command line moves between them.
    type=click.Choice(["pylock", "requirements", "pylock.toml", "requirements.txt"]),
    required=True,
    help="PEP 751 or pip's (also as uv names them: pylock.toml, requirements.txt).",
)
@click.option(
    "-o",
    "--output",
    "--output-file",
    "output",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Write here (default: standard output); --output-file as in uv export.",
)
@click.option(
    "--group", "groups", multiple=True, metavar="NAME", help="Also export this dependency group (repeatable)."
)
@click.option(
    "--python",
    "python",
    metavar="VERSION|PATH",
    help="Interpreter (X.Y or a path) uv checks the lock with (default: [tool.venvkeeper] python, "
    "else the project's .python-version / requires-python).",
)
@options.json_option
def export(
    project_dir: Path | None,
    project: Path | None,
    fmt: str,
    output: Path | None,
    groups: Sequence[str],
    python: str | None,
    as_json: bool,
) -> None:
    """Export the lock's runtime set (no dev group, no workspace members) for a container build."""
    project_dir = options.project_dir("export", as_json, project_dir, project)
    options.run(
        "export",
        as_json,
        lambda: bundle_export.export(
            project_dir,
            fmt.split(".", maxsplit=1)[0],
            output,
            tuple(groups) if groups else None,
            python=python,
        ),
    )


@cli.command()
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path, dir_okay=False))
@options.env_option
@click.option(
    "--python",
    "python",
    metavar="VERSION|PATH",
    help="Interpreter: a version (3.12) or a path (default: the bundle's).",
)
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Refuse the bundle unless it is signed by this key's private half.",
)
@click.option(
    "--keep", type=click.IntRange(min=0), metavar="N", help="Previous generations to keep (default 3)."
)
@click.option("--in-place", is_flag=True, help="Converge --env itself (a container layer); no generations.")
@click.option(
    "--hooks-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    metavar="DIR",
    help="Run the bundle's post-deploy hooks in this checkout (they need the project's files).",
)
@click.option(
    "--no-hooks", is_flag=True, help="Run none of the bundle's post-deploy hooks, even with --hooks-dir."
)
@click.option("--no-wait", is_flag=True, help="Fail at once if another venvkeeper holds the environment.")
@options.check_option
@options.diff_option
@options.json_option
@options.quiet_option
def install(
    bundle_path: Path,
    env: Path,
    python: str | None,
    public_key: Path | None,
    keep: int | None,
    in_place: bool,
    hooks_dir: Path | None,
    no_hooks: bool,
    no_wait: bool,
    check: bool,
    diff: bool,
    as_json: bool,
) -> None:
    """Install a bundle (or a pylock.toml) into a new generation of --env, with no network (checked first)."""
    if commands_lock.is_pylock(bundle_path):
        commands_lock.install(bundle_path, env, python, keep, not no_wait, check, as_json)
    if check:
        checking = functools.partial(
            bundle_installcheck.check,
            bundle_path,
            env,
            python=python,
            public_key=public_key,
            in_place=in_place,
            hooks_dir=hooks_dir,
            run_hooks=not no_hooks,
            diff=diff,
        )
        options.run("install", as_json, checking)
    installing = functools.partial(
        bundle_install.install,
        bundle_path,
        env,
        python=python,
        public_key=public_key,
        keep=keep,
        wait=not no_wait,
        in_place=in_place,
        hooks_dir=hooks_dir,
        run_hooks=not no_hooks,
        diff=diff,
    )
    options.run("install", as_json, installing)


@cli.command()
@click.argument("private_key", type=click.Path(path_type=Path, dir_okay=False))
@options.json_option
def keygen(private_key: Path, as_json: bool) -> None:
    """Write an Ed25519 key pair: PRIVATE_KEY (mode 0600) and PRIVATE_KEY.pub."""
    options.run("keygen", as_json, lambda: bundle_keys.keygen(private_key))


@cli.command()
@click.argument("project_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@options.project_option
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Bundle."
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="TAG",
    help="Target platform tag (default: this machine's).",
)
@click.option(
    "--python", "python", metavar="VERSION", help="Target Python X.Y (default: this interpreter's)."
)
@click.option(
    "--group", "groups", multiple=True, metavar="NAME", help="Also bundle this dependency group (repeatable)."
)
@click.option("--with-uv", is_flag=True, help="Carry the uv binary, so the target needs only Python.")
@click.option("--sign", "sign_key", type=click.Path(path_type=Path, dir_okay=False), help="Ed25519 key.")
@click.option("--executable", is_flag=True, help="Write one runnable file (implies --with-uv).")
@click.option(
    "--script", metavar="NAME", help="The console script the executable runs (default: the members' first)."
)
@carried_python_options
@options.json_option
@options.quiet_option
def pack(
    project_dir: Path | None,
    project: Path | None,
    output: Path,
    platforms: Sequence[str],
    python: str | None,
    groups: Sequence[str],
    with_uv: bool,
    sign_key: Path | None,
    executable: bool,
    script: str | None,
    with_python: bool,
    python_archive: Path | None,
    as_json: bool,
) -> None:
    """Pack the lock's wheels and the built members into one deterministic, offline bundle."""
    project_dir = options.project_dir("pack", as_json, project_dir, project)
    options.run(
        "pack",
        as_json,
        lambda: bundle_pack.pack(
            project_dir,
            output,
            platforms=tuple(platforms),
            python=python,
            groups=tuple(groups) if groups else None,
            with_uv=with_uv,
            sign_key=sign_key,
            executable=executable,
            script=script,
            with_python=with_python,
            python_archive=python_archive,
        ),
    )


cli.add_command(audit)
cli.add_command(receipt)
cli.add_command(sbom)
cli.add_command(run_executable)
cli.add_command(heal)
