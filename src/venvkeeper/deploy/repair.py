"""``deploy --repair``: verify the live environment first; what it finds forces a rebuild.

uv's cache entries that the damaged files are hard links to are removed before the rebuild, so it
fetches fresh bytes instead of linking the same damaged ones again.
"""

from __future__ import annotations

from venvkeeper.core.errors import CannotVerifyError
from venvkeeper.deploy.decision import Repair
from venvkeeper.generations import engine, inspection
from venvkeeper.generations.layout import Layout
from venvkeeper.generations.transaction import Target

__all__ = ["plan_repair"]


def plan_repair(layout: Layout, target: Target, *, clean: bool = True) -> Repair | None:
    """Verify the live environment; None when there is none to verify (a normal deploy runs).
    ``clean`` False (``--check``): uv's cache entries are only named, not dropped."""
    if target.live is None or target.kind not in ("generation", "in-place"):
        return None
    subject = inspection.resolve(str(layout.env))
    try:
        found = inspection.inspect(subject).findings
        damaged_manifest = 0
    except CannotVerifyError:
        # The manifest is damaged or does not match its record: check the rest without it, and
        # rebuild in any case, so the new generation is sealed afresh.
        subject.manifest_path = None
        found = inspection.inspect(subject).findings
        damaged_manifest = 1
    affected = tuple(sorted({f.distribution for f in found if f.distribution}))
    poisoned = tuple(sorted({f.distribution for f in found if f.distribution and f.cache}))
    if clean:
        engine.clean_cache(poisoned)
    return Repair(len(found) + damaged_manifest, affected, poisoned)
