"""The supply-chain commands: ``audit`` (known vulnerabilities, in OSV's terms) and ``receipt`` (a
signed statement of what an environment is)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path

import click

from venvkeeper.cli import commands_lock, options
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.lazy import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.audit import ignores, run, sources
    from venvkeeper.audit.result import AuditResult
    from venvkeeper.cli import audit_subjects
    from venvkeeper.project import workspace
    from venvkeeper.verify import receipt as receipts
else:
    ignores = lazy("venvkeeper.audit.ignores")
    run = lazy("venvkeeper.audit.run")
    sources = lazy("venvkeeper.audit.sources")
    audit_subjects = lazy("venvkeeper.cli.audit_subjects")
    workspace = lazy("venvkeeper.project.workspace")
    receipts = lazy("venvkeeper.verify.receipt")

__all__ = ["audit", "receipt"]

# The advisory source when neither --osv nor [tool.venvkeeper.audit] osv names one.
OSV_VARIABLE = "VENVKEEPER_OSV"


@click.command(cls=options.Command)
@click.argument("target", required=False, type=click.Path(path_type=Path))
@options.project_option
@click.option("--env", "env", type=click.Path(path_type=Path), help="Audit this environment's live packages.")
@click.option(
    "--osv",
    "osv",
    metavar="URL|PATH",
    help="Advisories: an OSV API's base URL, or an OSV export zip (offline). "
    f"Default: [tool.venvkeeper.audit] osv, else ${OSV_VARIABLE}.",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="ID:YYYY-MM-DD:REASON",
    help="Accept an advisory (by id or alias) until that date, for that reason (repeatable).",
)
@click.option("--group", "groups", multiple=True, metavar="NAME", help="Also audit this dependency group.")
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="A signed bundle's public key (its signature is checked first).",
)
@options.json_option
def audit(
    target: Path | None,
    project: Path | None,
    env: Path | None,
    osv: str | None,
    ignore: Sequence[str],
    groups: Sequence[str],
    public_key: Path | None,
    as_json: bool,
) -> None:
    """Known vulnerabilities of a lock, an environment or a bundle (exit 0 clean, 1 findings, 2 no data).

    TARGET is a project directory (its uv.lock, with deploy's selection of groups), a pylock.toml or a bundle;
    --env PATH audits what an environment holds (with --project, the project's config is read too).
    """

    def action() -> AuditResult:
        subject, config = _subject(target, project, env, tuple(groups) or None, public_key)
        source = _source(osv, config)
        accepted = [*(ignores.parse_ignore(i) for i in ignore), *config.ignores]
        return run.audit(subject, source, accepted, datetime.date.today())

    options.run("audit", as_json, action)


def _subject(
    target: Path | None,
    project: Path | None,
    env: Path | None,
    groups: tuple[str, ...] | None,
    public_key: Path | None,
) -> tuple[run.Subject, ignores.AuditConfig]:
    """What to audit (--env, a bundle file, else a project's lock) and the project's audit config."""
    if target is not None and target.is_dir() and project is not None:
        raise ConfigError(
            f"the project directory is given twice: {target} and --project {project}", hint="give one"
        )
    bundle = target if target is not None and not target.is_dir() else None
    if bundle is not None and env is not None:
        raise ConfigError(f"audit one thing at a time: the bundle {bundle} or --env {env}", hint="give one")
    root = project if target is None or bundle is not None else target
    if root is None and env is None and bundle is None:
        root = Path(".")
    found = workspace.load_workspace(root) if root is not None else None
    config = (
        ignores.parse_audit_config(found.pyproject, found.root / "pyproject.toml")
        if found is not None
        else ignores.AuditConfig()
    )
    if env is not None:
        return audit_subjects.env_subject(env), config
    if bundle is not None and commands_lock.is_pylock(bundle):
        return audit_subjects.pylock_subject(bundle), config  # PEP 751: every package it locks
    if bundle is not None:
        return audit_subjects.bundle_subject(bundle, public_key), config
    if found is None:  # unreachable: root defaults to "." when nothing else is given
        raise ConfigError("nothing to audit", hint="give a project directory, --env PATH or a bundle")
    return audit_subjects.lock_subject(found, groups), config


def _source(osv: str | None, config: ignores.AuditConfig) -> sources.Source:
    if osv:
        return sources.parse_source(osv, "--osv")
    if config.osv:
        return sources.parse_source(config.osv, "[tool.venvkeeper.audit] osv")
    if os.environ.get(OSV_VARIABLE):
        return sources.parse_source(os.environ[OSV_VARIABLE], f"${OSV_VARIABLE}")
    raise ConfigError(
        "no advisory source: audit needs --osv URL|PATH",
        hint=f"pass --osv https://api.osv.dev or the path of OSV's PyPI/all.zip, or set "
        f"[tool.venvkeeper.audit] osv or ${OSV_VARIABLE}",
    )


@click.command(cls=options.Command)
@options.env_option
@click.option(
    "--key",
    "key",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="The Ed25519 private key (venvkeeper keygen) that signs.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write the receipt here (default: print the envelope).",
)
@options.json_option
def receipt(env: Path, key: Path, output: Path | None, as_json: bool) -> None:
    """Sign an in-toto statement of what --env's live generation is (DSSE, Ed25519), once it verifies."""
    options.run("receipt", as_json, lambda: receipts.sign_receipt(str(env), key, output))
