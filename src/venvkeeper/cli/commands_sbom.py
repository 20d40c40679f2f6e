"""``venvkeeper sbom``: the CycloneDX 1.6 SBOM of a live generation (``--env``) or of a bundle, as it was
written when the generation was sealed or the bundle packed (docs/supply-chain.md)."""

from __future__ import annotations

from pathlib import Path

import click

from venvkeeper.cli import options
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.lazy import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.bundle import sbomfile as bundle_sbom
    from venvkeeper.core import files as fsutil
    from venvkeeper.sbom import read as sbomread
    from venvkeeper.sbom.result import SbomResult
else:
    bundle_sbom = lazy("venvkeeper.bundle.sbomfile")
    fsutil = lazy("venvkeeper.core.files")
    sbomread = lazy("venvkeeper.sbom.read")

__all__ = ["sbom"]


def _sbom(bundle: Path | None, env: Path | None, output: Path | None, public_key: Path | None) -> SbomResult:
    if (bundle is None) == (env is None):
        raise ConfigError(
            "give either --env PATH or a BUNDLE file, not both nor neither",
            hint="venvkeeper sbom --env /srv/app/.venv, or venvkeeper sbom app.vkb --public-key KEY",
        )
    if public_key is not None and bundle is None:
        raise ConfigError(
            "--public-key checks a BUNDLE's signature: give the bundle", hint="drop --public-key"
        )
    if env is not None:
        result = sbomread.env_sbom(str(env))
    else:
        assert bundle is not None  # noqa: S101 - checked above
        result = bundle_sbom.bundle_sbom(bundle, public_key)
    if output is not None:
        fsutil.atomic_write_bytes(output, result.document)
        result.output = str(output)
    return result


@click.command(cls=options.Command)
@click.argument("bundle", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--env", "env", type=click.Path(path_type=Path), metavar="PATH", help="The live generation's SBOM."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write the SBOM here (default: print it).",
)
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="A signed bundle's public key (its signature is checked first).",
)
@options.json_option
def sbom(
    bundle: Path | None, env: Path | None, output: Path | None, public_key: Path | None, as_json: bool
) -> None:
    """Print the CycloneDX 1.6 SBOM of --env's live generation or of a BUNDLE (the same bytes every time)."""
    options.run("sbom", as_json, lambda: _sbom(bundle, env, output, public_key))
