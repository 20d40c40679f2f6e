"""``deploy --repair``: verify the live environment first; what it finds forces a rebuild.

uv's cache entries that the damaged files are hard links to are removed before the rebuild, so it
fetches fresh bytes instead of linking the same damaged ones again.

The generation's SBOM lives beside its record, not in the venv: a missing or altered one is rewritten
in place (the venv is not touched) when the bytes built again from the sealed manifest and the lock are
the very ones the record names, since the SBOM is deterministic; otherwise it counts as a finding, and
the new generation is sealed with an SBOM of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from venvkeeper.core.errors import CannotVerifyError
from venvkeeper.deploy.decision import Repair
from venvkeeper.generations import engine, inspection
from venvkeeper.generations.layout import Layout
from venvkeeper.generations.manifest import Manifest
from venvkeeper.generations.transaction import Target
from venvkeeper.sbom import facts as sbomfacts
from venvkeeper.sbom import generation as sbomgen
from venvkeeper.sbom import read as sbomread
from venvkeeper.sbom import sealed as sealed_sbom

__all__ = ["SbomLock", "plan_repair"]

# The entries and time of the lock the live generation was built from, for its SBOM built again
# (None: the uv.lock of the project its record names, while it still holds the same bytes).
SbomLock = Callable[[], tuple[Mapping[tuple[str, str], sbomfacts.LockEntry], str | None]]


def plan_repair(
    layout: Layout, target: Target, *, clean: bool = True, sbom_lock: SbomLock | None = None
) -> Repair | None:
    """Verify the live environment; None when there is none to verify (a normal deploy runs).
    ``clean`` False (``--check``): uv's cache entries are only named, not dropped, and the SBOM is
    only found rewritable, not written."""
    if target.live is None or target.kind not in ("generation", "in-place"):
        return None
    subject = inspection.resolve(str(layout.env))
    manifest: Manifest | None = None
    try:
        inspected = inspection.inspect(subject)
        found, manifest = inspected.findings, inspected.manifest
        damaged_manifest = 0
    except CannotVerifyError:
        # The manifest is damaged or does not match its record: check the rest without it, and
        # rebuild in any case, so the new generation is sealed afresh.
        subject.manifest_path = None
        found = inspection.inspect(subject).findings
        damaged_manifest = 1
    left, sbom = _sbom(subject, manifest, clean, sbom_lock) if manifest is not None else (0, "")
    affected = tuple(sorted({f.distribution for f in found if f.distribution}))
    poisoned = tuple(sorted({f.distribution for f in found if f.distribution and f.cache}))
    if clean:
        engine.clean_cache(poisoned)
    return Repair(len(found) + damaged_manifest + left, affected, poisoned, sbom)


def _sbom(
    subject: inspection.Subject, manifest: Manifest, write: bool, lock: SbomLock | None
) -> tuple[int, str]:
    """verify's SBOM check, and a missing or altered SBOM rewritten when it can be built again byte for
    byte: (findings left for a rebuild, what was done to the file)."""
    finding, _ = sealed_sbom.check(subject)
    if finding is None or finding.path is None or subject.state is None:
        return 0, ""
    entries, timestamp = lock() if lock is not None else sbomread.recorded_lock(subject.state)[:2]
    raw = sbomgen.rebuilt(Path(subject.directory), manifest, subject.state, entries, timestamp)
    if raw is None:
        return 1, ""
    what = "missing" if finding.actual == "missing" else "altered"
    if not write:
        return 0, f"would rewrite {finding.path} ({what}) as its record names it"
    try:
        sbomgen.write(Path(finding.path), raw)
    except OSError:  # full, read-only or not ours: left as a finding, so a new generation is sealed
        return 1, ""
    return 0, f"rewrote {finding.path} ({what}) from the sealed manifest and the lock, as its record names it"
