"""``deploy --repair``: verify the live environment first; what it finds forces a rebuild.

uv's cache entries that the damaged files are hard links to are removed before the rebuild, so it
fetches fresh bytes instead of linking the same damaged ones again. With ``--check`` nothing is
removed: the findings are only named, for the answer "a repair would rebuild it".

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

__all__ = ["SbomLock", "described", "plan_repair"]

# The entries and time of the lock the live generation was built from, for its SBOM built again
# (None: the uv.lock of the project its record names, while it still holds the same bytes).
SbomLock = Callable[[], tuple[Mapping[tuple[str, str], sbomfacts.LockEntry], str | None]]

# How many findings --check --repair's reason names; the rest are counted (verify lists them all).
_NAMED = 3


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
    named: list[str] = []
    try:
        inspected = inspection.inspect(subject)
        found, manifest = inspected.findings, inspected.manifest
    except CannotVerifyError as exc:
        # The manifest is damaged or does not match its record: check the rest without it, and
        # rebuild in any case, so the new generation is sealed afresh.
        subject.manifest_path = None
        found = inspection.inspect(subject).findings
        named.append(f"manifest: {exc.message}")
    named += (" ".join(x for x in (f.category, f.path or f.distribution) if x) for f in found)
    left, sbom = _sbom(subject, manifest, clean, sbom_lock) if manifest is not None else ([], "")
    named += left
    affected = tuple(sorted({f.distribution for f in found if f.distribution}))
    poisoned = tuple(sorted({f.distribution for f in found if f.distribution and f.cache}))
    if clean:
        engine.clean_cache(poisoned)
    return Repair(len(named), affected, poisoned, sbom, tuple(named))


def described(found: Repair) -> str:
    """``verify found 2 findings in the live environment: modified lib/..., missing-file ...``; an SBOM
    that is only rewritten (beside the record) is a finding too, counted as ``repair_findings`` is."""
    named = (*found.named, *([found.sbom] if found.sbom else []))
    shown = ", ".join(named[:_NAMED])
    more = f" and {len(named) - _NAMED} more" if len(named) > _NAMED else ""
    plural = "s" if len(named) != 1 else ""
    return f"verify found {len(named)} finding{plural} in the live environment: {shown}{more}"


def _sbom(
    subject: inspection.Subject, manifest: Manifest, write: bool, lock: SbomLock | None
) -> tuple[list[str], str]:
    """verify's SBOM check, and a missing or altered SBOM rewritten when it can be built again byte for
    byte: (the findings left for a rebuild, as named; what was done to the file)."""
    finding, _ = sealed_sbom.check(subject)
    if finding is None or finding.path is None or subject.state is None:
        return [], ""
    entries, timestamp = lock() if lock is not None else sbomread.recorded_lock(subject.state)[:2]
    raw = sbomgen.rebuilt(Path(subject.directory), manifest, subject.state, entries, timestamp)
    left = [f"sbom {finding.path}"]
    if raw is None:
        return left, ""
    what = "missing" if finding.actual == "missing" else "altered"
    if not write:
        return [], f"would rewrite {finding.path} ({what}) as its record names it"
    try:
        sbomgen.write(Path(finding.path), raw)
    except OSError:  # full, read-only or not ours: left as a finding, so a new generation is sealed
        return left, ""
    return (
        [],
        f"rewrote {finding.path} ({what}) from the sealed manifest and the lock, as its record names it",
    )
