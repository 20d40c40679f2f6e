"""The advisories in an update run: read at preflight, judged after each re-lock, summed up at the end.

The decisions are :mod:`.security`'s; this module asks the run's advisory source and keeps what a
re-lock must change (:class:`Adjust`) from one resolution to the next.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.update import plan as updateplan
from venvkeeper.update import security
from venvkeeper.update.config import UpdateConfig
from venvkeeper.update.session import Session, Stop, refused

__all__ = [
    "SECURITY_ROUNDS",
    "Adjust",
    "blocked",
    "in_the_way",
    "judge",
    "screen_current",
    "start",
    "summarize",
    "unblock",
]

# Re-locks for the advisories: capped below a vulnerable version, then held at the locked one.
SECURITY_ROUNDS = 4


@dataclass
class Adjust:
    """What the next re-lock asks differently because of advisories."""

    requests: dict[str, str] = field(default_factory=dict)  # name -> its --upgrade-package request
    rules: dict[str, str] = field(default_factory=dict)  # name -> the rule its change is checked by
    hold: set[str] = field(default_factory=set)  # kept at the locked version
    pinned: set[str] = field(default_factory=set)  # pinned (``==VERSION``) in the update table
    held_back: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> the report's entry
    # The caps the last judged re-lock added (name -> the vulnerable version), with that lock and what
    # moved in it: if uv then finds no solution, these say which packages' new versions need them.
    fresh: dict[str, str] = field(default_factory=dict)
    judged: Mapping[str, Any] = field(default_factory=dict)
    moved: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)

    def apply(self, plan: updateplan.UpgradePlan) -> updateplan.UpgradePlan:
        requests = {n: r for n, r in self.requests.items() if n not in self.hold}
        return security.with_requests(plan, requests, self.rules)


def screen_current(
    session: Session, config: UpdateConfig, lock: Mapping[str, Any]
) -> security.Screening | None:
    """The preflight check ``advisories``: the source (none configured: security is off) and the
    advisories of the locked versions; a source that cannot be read stops the run, nothing changed."""
    factory = session.request.advisories
    try:
        source = factory(session.root) if factory is not None else None
        if source is None:
            if config.security != "off":
                session.result.security = security.SecurityReport(
                    "none",
                    config.security,
                    note=f'security = "{config.security}" is set but no advisory source is configured: '
                    "security checks are off (give --osv, [tool.venvkeeper.audit] osv or $VENVKEEPER_OSV)",
                )
            return None
        versions = updateplan.locked_versions(lock, registry_only=True)
        current = source.affecting(versions)
    except VenvkeeperError as exc:
        raise refused("advisories", f"the advisories cannot be read: {exc.message}", exc.hint) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise refused("advisories", f"the advisories cannot be read: {exc}", "check --osv") from None
    screening = security.Screening(source, config.security, current)
    session.result.security = security.report(screening, versions, versions, current)
    return screening


def start(
    screening: security.Screening | None,
    versions: Mapping[str, Sequence[str]],
    config: UpdateConfig,
    policy: str,
) -> Adjust:
    """The first re-lock's changes: a fix past the policy, where the ``security`` level allows it."""
    adjust = Adjust()
    if screening is None:
        return adjust
    rules = {name: config.packages.get(name, policy) for name in versions}
    adjust.pinned = {name for name, rule in rules.items() if rule.startswith("==")}
    for name, target in security.fix_targets(versions, rules, screening.current, screening.level).items():
        adjust.requests[name] = security.widened_request(name, target, rules[name])
        adjust.rules[name] = screening.level
    return adjust


def _ask(screening: security.Screening, changes: Sequence[updateplan.Change]) -> security.Lookup:
    moved = {c.name: tuple(c.new.split(", ")) for c in changes if c.new}
    try:
        return screening.source.affecting(moved)
    except VenvkeeperError as exc:
        raise Stop("relock-failed", f"the advisories cannot be read: {exc.message}", hint=exc.hint) from None


def judge(
    screening: security.Screening,
    versions: Mapping[str, Sequence[str]],
    new_lock: Mapping[str, Any],
    changes: Sequence[updateplan.Change],
    adjust: Adjust,
    *,
    last: bool,
) -> bool:
    """Whether the re-lock installs a version with a known advisory; if so ``adjust`` holds it back
    (capped below it, or, a new dependency, its parent held; on the ``last`` round, held outright)."""
    # Only what comes from a registry is asked about: a git, path or private package's name is not
    # sent to an advisory service, and a PyPI project's advisory must not hold back its namesake.
    registry = updateplan.locked_versions(new_lock, registry_only=True)
    asked = [c for c in changes if canonicalize_name(c.name) in registry]
    bad = security.vulnerable_candidates(asked, _ask(screening, asked), screening.current)
    moved = {c.name for c in changes if c.old}
    added = {c.name for c in changes if not c.old}
    adjust.fresh, adjust.judged, adjust.moved, adjust.added = {}, new_lock, moved, added
    for name, (version, known) in bad.items():
        entry = _entry(name, version, sorted({k.id for k in known}))
        adjust.held_back.setdefault(name, entry)
        if name in added:
            for parent in sorted(security.parents_of(new_lock, name, moved, added)):
                adjust.hold.add(parent)
                adjust.held_back[name]["parent"] = parent
            continue
        capped = None
        # A pin names the one version to take: capped below it, uv would take another, which the pin
        # forbids; held at the locked version instead.
        if not last and len(versions.get(name, ())) == 1 and name not in adjust.pinned:
            capped = security.cap_request(name, versions[name][0], version)
        if capped is None:
            adjust.hold.add(name)
        else:
            adjust.requests[name] = capped
            adjust.rules.pop(name, None)  # back to its policy: the widening took a vulnerable version
            adjust.fresh[name] = version
    return bool(bad)


def _entry(name: str, version: str, ids: list[str], **more: Any) -> dict[str, Any]:
    """A held-back entry of the report, every key present (``held_at`` is set once the lock is final)."""
    entry = {"name": name, "version": version, "ids": ids, "parent": None, "requires": None, "uv": None}
    return {**entry, **more, "held_at": None}


def in_the_way(adjust: Adjust, uv_reason: str, uv_output: str = "") -> bool:
    """Whether uv's failure runs through what advisories held back: the last round added caps and uv's
    account names a package capped or held for one. Otherwise the conflict is another one (a policy
    hold, the project's own requirements), and the run ends with uv's reason and hint, not blaming an
    advisory."""
    return bool(adjust.fresh) and bool(security.named_in(f"{uv_reason}\n{uv_output}", adjust.held_back))


def unblock(adjust: Adjust, uv_reason: str, uv_output: str = "") -> bool:
    """uv found no solution with the last caps: hold at their locked versions the packages whose new
    versions depend on a capped one and that uv names (its derivation, ``uv_output``, names each package
    the conflict runs through; a dependent it does not name is not in the way). False when none is left
    to hold: the caps make the resolution impossible."""
    users = security.dependents(adjust.judged, adjust.fresh, adjust.moved, adjust.added)
    left = {name: capped for name, capped in users.items() if name not in adjust.hold}
    chosen = security.named_in(f"{uv_reason}\n{uv_output}", left)
    judged = updateplan.locked_versions(adjust.judged)
    for name in chosen:
        capped = left[name]
        version = ", ".join(judged.get(name, ())) or "?"
        ids = adjust.held_back[capped]["ids"]
        adjust.held_back[name] = _entry(name, version, ids, requires=capped, uv=uv_reason)
        adjust.hold.add(name)
    return bool(chosen)


def blocked(session: Session, adjust: Adjust, error: VenvkeeperError) -> Stop:
    """The run's end when the caps leave uv no solution and nothing more can be held: uv's reason, and
    the report's advisories naming what was held back."""
    capped = ", ".join(
        f"{name} below {version} ({', '.join(adjust.held_back[name]['ids'])})"
        for name, version in sorted(adjust.fresh.items())
    )
    found = session.result.security
    if found is not None:
        found.held_back = [adjust.held_back[n] for n in sorted(adjust.held_back)]
    return Stop(
        "relock-failed",
        f"holding back versions with known advisories leaves no solution: {capped}; "
        f"{error.message}; uv.lock was not changed",
        hint="the packages uv names need the version with the advisory: wait for releases that do not, "
        "or, if the advisory does not apply here, ignore it in [tool.venvkeeper.audit] ignore "
        "(id, until, reason)",
    )


def summarize(
    session: Session,
    screening: security.Screening | None,
    versions: Mapping[str, Sequence[str]],
    new_lock: Mapping[str, Any],
    adjust: Adjust,
) -> None:
    """The report's advisories once the re-lock is final: fixed, remaining, held back."""
    if screening is None:
        return
    new = updateplan.locked_versions(new_lock, registry_only=True)
    try:
        after = screening.source.affecting(new)
    except VenvkeeperError as exc:
        raise Stop("relock-failed", f"the advisories cannot be read: {exc.message}", hint=exc.hint) from None
    found = security.report(screening, versions, new, after)
    held = adjust.held_back
    found.held_back = [{**held[n], "held_at": ", ".join(new.get(n, ())) or None} for n in sorted(held)]
    session.result.security = found
