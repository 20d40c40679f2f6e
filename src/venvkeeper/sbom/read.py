"""``venvkeeper sbom --env PATH``: the live generation's SBOM, as written when it was sealed; for a
generation made before SBOMs, built now from its manifest and record (and the lock, while the project
still holds the very lock it was built from)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from venvkeeper.core.errors import CannotVerifyError, VenvkeeperError
from venvkeeper.core.lazy import lazy
from venvkeeper.generations.inspection import Subject, load_manifest, sealed_subject
from venvkeeper.sbom import generation as sbomgen
from venvkeeper.sbom import sealed
from venvkeeper.sbom.result import SbomResult

if TYPE_CHECKING:
    from venvkeeper.project import workspace
    from venvkeeper.sbom import facts as sbomfacts
else:
    # Only for a generation made before SBOMs, built now: the recorded file is read without them.
    workspace = lazy("venvkeeper.project.workspace")
    sbomfacts = lazy("venvkeeper.sbom.facts")

__all__ = ["env_sbom", "live_sbom_sha256", "recorded_lock"]


def _recorded(subject: Subject) -> bytes | None:
    """The SBOM written with the generation (checked against its record), or None when it has none."""
    assert subject.manifest_path is not None  # noqa: S101 - _subject made sure
    path = sbomgen.sbom_path(Path(subject.manifest_path))
    recorded = (subject.state or {}).get("sbom_sha256")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if recorded:
            raise CannotVerifyError(
                f"{path}: missing, though the generation's record names its sha256",
                hint=sealed.fix(subject.state, str(path)),
            ) from None
        return None
    except OSError as exc:
        raise CannotVerifyError(
            f"{path}: cannot be read: {exc.strerror}", hint="check its permissions"
        ) from None
    if recorded and hashlib.sha256(raw).hexdigest() != recorded:
        raise CannotVerifyError(
            f"{path}: does not match the sha256 in its generation record",
            hint=f"changed after the deploy; {sealed.fix(subject.state, str(path))}",
        )
    return raw


def _lock_of(
    project: str | None, lock_sha256: str | None
) -> tuple[dict[tuple[str, str], sbomfacts.LockEntry], str]:
    """The lock's entries, when the project still holds the lock the generation was built from."""
    if not project or not lock_sha256 or not os.path.isfile(os.path.join(project, "uv.lock")):
        return {}, "its lock is not at hand: no wheel hashes"
    try:
        loaded = workspace.load_workspace(Path(project))
        if hashlib.sha256(loaded.lock_bytes).hexdigest() != lock_sha256:
            return {}, f"{project}/uv.lock has changed since: no wheel hashes"
        return sbomfacts.lock_entries(workspace.parse_lock(loaded)), ""
    except VenvkeeperError as exc:  # the project moved on: the SBOM is still the manifest's
        return {}, f"{project} cannot be read ({exc}): no wheel hashes"


def recorded_lock(
    state: Mapping[str, Any],
) -> tuple[dict[tuple[str, str], sbomfacts.LockEntry], str | None, str]:
    """The entries and time of the uv.lock a generation was deployed from, while its project still
    holds those very bytes; else no entries, no time and why not."""
    project = state.get("project")
    entries, missing = _lock_of(project, state.get("lock_sha256"))
    return entries, sbomgen.lock_time(Path(project)) if entries and project else None, missing


def env_sbom(env: str) -> SbomResult:
    subject = sealed_subject(env, "an SBOM describes a sealed generation")
    raw = _recorded(subject)
    if raw is not None:
        return SbomResult(source=env, document=raw, generation=subject.generation)
    manifest = load_manifest(subject)
    if manifest is None:
        raise CannotVerifyError(
            f"{env}: {subject.why_no_manifest}: no SBOM can be built", hint="deploy again"
        )
    state = subject.state or {}
    entries, timestamp, missing = recorded_lock(state)
    raw = sbomgen.build(Path(subject.directory), manifest, state, entries, timestamp)
    why = "it was made before venvkeeper wrote SBOMs: built now from its manifest and record"
    return SbomResult(
        source=env,
        document=raw,
        generation=subject.generation,
        built_now=f"{why}; {missing}" if missing else why,
    )


def live_sbom_sha256(subject: Subject) -> str | None:
    """The sha256 of the generation's SBOM as recorded (and still on disk), or None for one without."""
    raw = _recorded(subject)
    return (
        hashlib.sha256(raw).hexdigest()
        if raw is not None and (subject.state or {}).get("sbom_sha256")
        else None
    )
