"""A bundle's SBOM: built by ``pack`` from the lock and the files it bundles, read back by ``venvkeeper
sbom BUNDLE`` once the whole bundle has been checked (sizes, sha256, and with a key its signature)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import parse_wheel_filename

from venvkeeper.bundle.archive import SBOM, TOP, BundleError, read_bundle
from venvkeeper.bundle.locked import Artifact
from venvkeeper.core.lazy import lazy
from venvkeeper.sbom import facts as sbomfacts
from venvkeeper.sbom.result import SbomResult

if TYPE_CHECKING:
    from venvkeeper.core import signing
    from venvkeeper.sbom import document
else:
    signing = lazy("venvkeeper.core.signing")
    document = lazy("venvkeeper.sbom.document")  # cyclonedx-python-lib: only when one is written

__all__ = ["bundle_sbom", "pack_sbom"]


def pack_sbom(
    lock: Mapping[str, Any],
    wheels: Sequence[Artifact],
    from_sdists: Sequence[Artifact],
    member_wheels: Sequence[tuple[Path, str]],
    *,
    project: str,
    project_version: str | None,
    commit: str | None,
    mtime: int,
) -> bytes:
    """The SBOM of a bundle holding the lock's ``wheels``, the wheels built from ``from_sdists`` (each
    described by the sdist, its ``built_from``) and the members' wheels (path, sha256)."""
    artifacts = [(a.name, a.version, sbomfacts.Artifact(a.filename, a.sha256, "wheel")) for a in wheels]
    for built in from_sdists:
        sdist = built.built_from or built
        artifacts.append(
            (built.name, built.version, sbomfacts.Artifact(sdist.filename, sdist.sha256, sdist.kind))
        )
    members = []
    for path, sha256 in member_wheels:
        name, version, _, _ = parse_wheel_filename(path.name)
        members.append((str(name), str(version), sbomfacts.Artifact(path.name, sha256, "wheel")))
    timestamp = datetime.datetime.fromtimestamp(mtime, datetime.UTC).isoformat() if mtime else None
    facts = sbomfacts.bundle_facts(
        sbomfacts.lock_entries(lock),
        artifacts,
        members,
        project=project,
        project_version=project_version or None,
        commit=commit,
        timestamp=timestamp,
    )
    return document.render(facts)


def bundle_sbom(path: Path, public_key: Path | None) -> SbomResult:
    """The SBOM a bundle carries, once the bundle is checked whole (as install checks it)."""
    key = signing.load_key_file(public_key, "public") if public_key is not None else None
    checked = read_bundle(path, public_key=key)
    if checked.sbom is None:
        raise BundleError(
            f"{path}: has no {TOP}/{SBOM}: it was packed before venvkeeper wrote SBOMs",
            hint="pack it again with this venvkeeper",
        )
    return SbomResult(source=str(path), document=checked.sbom)
