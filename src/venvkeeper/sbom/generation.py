"""A generation's SBOM: gathered from its sealed manifest, its record and the lock, written beside the
manifest (``generations/NNNN.sbom.cdx.json``, ``in-place.sbom.cdx.json``) before the record.

deploy, install and update write it where they seal the manifest; ``venvkeeper sbom --env`` reads it,
and builds it from the manifest and the record for a generation made before there were SBOMs.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from venvkeeper.core import files as fsutil
from venvkeeper.core.lazy import lazy

if TYPE_CHECKING:
    from venvkeeper.gateways import git as gitcmd
    from venvkeeper.generations.manifest import Manifest
    from venvkeeper.sbom import document
    from venvkeeper.sbom import facts as sbomfacts
else:
    document = lazy("venvkeeper.sbom.document")  # cyclonedx-python-lib: only when an SBOM is written
    # Only to build one: `sbom --env` reads the file written at the seal without them (purls, tags).
    gitcmd = lazy("venvkeeper.gateways.git")
    sbomfacts = lazy("venvkeeper.sbom.facts")

__all__ = [
    "SUFFIX",
    "build",
    "lock_time",
    "preload",
    "rebuilt",
    "sbom_path",
    "wheel_tags",
    "write",
    "write_generation",
]

SUFFIX = ".sbom.cdx.json"
_MANIFEST_SUFFIX = ".manifest.json"


def _load() -> None:
    document.render  # noqa: B018 - the first read imports cyclonedx-python-lib


def preload() -> None:
    """Import cyclonedx-python-lib (about 0.3 s) in a thread while uv installs, so that writing the SBOM
    after the seal costs only its rendering. The deferred module takes the import lock: a write that
    comes first waits for the one import."""
    threading.Thread(target=_load, name="sbom-preload").start()


def sbom_path(manifest_path: Path) -> Path:
    """``generations/0003.manifest.json`` -> ``generations/0003.sbom.cdx.json`` (in place likewise)."""
    return manifest_path.with_name(manifest_path.name.removesuffix(_MANIFEST_SUFFIX) + SUFFIX)


def wheel_tags(env_dir: Path, manifest: Manifest) -> dict[str, list[str]]:
    """Each distribution's ``Tag:`` lines, from its installed ``*.dist-info/WHEEL`` as sealed (a WHEEL
    whose content is no longer the sealed one is not read: no tags, so no wheel is claimed for it)."""
    found: dict[str, list[str]] = {}
    for path, sealed in manifest.files.items():
        if not sealed.owner or not path.endswith(".dist-info/WHEEL"):
            continue
        try:
            raw = (env_dir / path).read_bytes()
        except OSError:
            continue
        if hashlib.sha256(raw).hexdigest() != sealed.sha256:
            continue
        lines = raw.decode("utf-8", "replace").splitlines()
        found[sealed.owner] = sorted(line[4:].strip() for line in lines if line.startswith("Tag:"))
    return found


def lock_time(root: Path | None) -> str | None:
    """When ``uv.lock`` was last committed (UTC, ISO 8601), or None outside git or uncommitted."""
    if root is None or not root.is_dir():
        return None
    proc = gitcmd.run_git(["log", "-1", "--format=%cI", "--", "uv.lock"], cwd=root, check=False)
    text = proc.stdout.decode().strip()
    if proc.returncode != 0 or not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(datetime.UTC).isoformat()


def _project(members: Sequence[Mapping[str, Any]], project_dir: str | None) -> str:
    for member in members:
        if member.get("path") == "." and member.get("name"):
            return str(member["name"])
    return os.path.basename(project_dir.rstrip("/")) if project_dir else "environment"


def build(
    env_dir: Path,
    manifest: Manifest,
    record: Mapping[str, Any],
    entries: Mapping[tuple[str, str], sbomfacts.LockEntry],
    timestamp: str | None,
) -> bytes:
    """The SBOM of the generation in ``env_dir``: ``record`` is its record as JSON (members, commit)."""
    members = record.get("members") or []
    hashes = {str(m["name"]): m.get("sha256") for m in members if m.get("package", True) and m.get("name")}
    facts = sbomfacts.generation_facts(
        manifest.distributions,
        wheel_tags(env_dir, manifest),
        entries,
        hashes,
        project=_project(members, record.get("project")),
        commit=record.get("git_commit"),
        timestamp=timestamp,
    )
    return document.render(facts)


def write(path: Path, raw: bytes) -> str:
    """Write an SBOM atomically; its sha256."""
    fsutil.atomic_write_bytes(path, raw)
    return hashlib.sha256(raw).hexdigest()


def write_generation(
    env_dir: Path,
    manifest_path: Path,
    manifest: Manifest,
    record: Mapping[str, Any],
    lock: Mapping[str, Any],
    root: Path | None,
) -> str:
    """Build and write the SBOM of a generation deployed from the project at ``root`` with ``lock``
    (uv.lock, parsed), beside its manifest; its sha256, for the record."""
    raw = build(env_dir, manifest, record, sbomfacts.lock_entries(lock), lock_time(root))
    return write(sbom_path(manifest_path), raw)


def rebuilt(
    env_dir: Path,
    manifest: Manifest,
    record: Mapping[str, Any],
    entries: Mapping[tuple[str, str], sbomfacts.LockEntry],
    timestamp: str | None,
) -> bytes | None:
    """The generation's SBOM built again (for ``deploy --repair``), or None when the bytes built now
    are not the ones its record's ``sbom_sha256`` names: the lock at hand is not the one it was
    built from, or the installed WHEEL files changed. The SBOM is deterministic, so the same
    generation and lock give the very bytes written when it was sealed, and only those may replace
    the file: anything else would be an SBOM its record does not vouch for."""
    recorded = record.get("sbom_sha256")
    if not recorded:
        return None
    raw = build(env_dir, manifest, record, entries, timestamp)
    return raw if hashlib.sha256(raw).hexdigest() == recorded else None
