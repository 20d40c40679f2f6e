"""``deploy --repair``: verify the live environment first; what it finds forces a rebuild.

uv's cache entries that the damaged files are hard links to are removed before the rebuild, so it
fetches fresh bytes instead of linking the same damaged ones again. With ``--check`` nothing is
removed: the findings are only named, for the answer "a repair would rebuild it".
"""

from __future__ import annotations

from venvkeeper.core.errors import CannotVerifyError
from venvkeeper.deploy.decision import Repair
from venvkeeper.generations import engine, inspection
from venvkeeper.generations.layout import Layout
from venvkeeper.generations.transaction import Target

__all__ = ["described", "plan_repair"]

# How many findings --check --repair's reason names; the rest are counted (verify lists them all).
_NAMED = 3


def plan_repair(layout: Layout, target: Target, *, clean: bool = True) -> Repair | None:
    """Verify the live environment; None when there is none to verify (a normal deploy runs).
    ``clean`` False (``--check``): uv's cache entries are only named, not dropped."""
    if target.live is None or target.kind not in ("generation", "in-place"):
        return None
    subject = inspection.resolve(str(layout.env))
    named: list[str] = []
    try:
        found = inspection.inspect(subject).findings
    except CannotVerifyError as exc:
        # The manifest is damaged or does not match its record: check the rest without it, and
        # rebuild in any case, so the new generation is sealed afresh.
        subject.manifest_path = None
        found = inspection.inspect(subject).findings
        named.append(f"manifest: {exc.message}")
    named += (" ".join(x for x in (f.category, f.path or f.distribution) if x) for f in found)
    affected = tuple(sorted({f.distribution for f in found if f.distribution}))
    poisoned = tuple(sorted({f.distribution for f in found if f.distribution and f.cache}))
    if clean:
        engine.clean_cache(poisoned)
    return Repair(len(named), affected, poisoned, tuple(named))


def described(found: Repair) -> str:
    """``verify found 2 findings in the live environment: modified lib/..., missing-file ...``."""
    shown = ", ".join(found.named[:_NAMED])
    more = f" and {len(found.named) - _NAMED} more" if len(found.named) > _NAMED else ""
    plural = "s" if found.findings != 1 else ""
    return f"verify found {found.findings} finding{plural} in the live environment: {shown}{more}"
