"""An environment's fingerprints: the options that shape it, the digests that say whether it changed,
and the difference between two package sets.

Nothing here touches the filesystem or runs a program. :mod:`venvkeeper.project.facts` computes the
inputs digest; :mod:`venvkeeper.deploy.decision` compares both digests with the live generation's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from venvkeeper.project.hashing import digest_json

__all__ = [
    "Options",
    "PackageDiff",
    "diff_packages",
    "effective_digest",
    "inputs_digest",
    "interpreter_unchanged",
    "undefined_groups",
]


@dataclass(frozen=True)
class Options:
    """The options that decide what an environment contains (part of every fingerprint)."""

    groups: tuple[str, ...] = ()
    python: str | None = None
    in_place: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "groups": sorted(set(self.groups)),
            "python": self.python,
            "in_place": self.in_place,
            "editable": False,
            # The selection rule (venvkeeper.project.selection): uv's default-groups are not deployed unless
            # named. Environments built before the rule (with --no-dev) carry no such key, so their
            # fingerprints differ and the next deploy converges them once on the lock's runtime set.
            "selection": "runtime+named-groups",
        }


@dataclass(frozen=True)
class PackageDiff:
    added: list[dict[str, str]] = field(default_factory=list)
    removed: list[dict[str, str]] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, list[dict[str, str]]]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def before_after(self) -> dict[str, str]:
        """The changed packages as two texts of sorted ``name==version`` lines (what Ansible's diff
        mode and ``--diff`` show): what is there before, and what would be after."""
        before = [(e["name"], e["old"]) for e in (*self.removed, *self.changed)]
        after = [(e["name"], e["new"]) for e in (*self.added, *self.changed)]
        return {
            "before": "".join(f"{n}=={v}\n" for n, v in sorted(before)),
            "after": "".join(f"{n}=={v}\n" for n, v in sorted(after)),
        }


def inputs_digest(
    *,
    lock_sha256: str,
    pyprojects: Mapping[str, str],
    python_version_file: str | None,
    member_hashes: Mapping[str, str],
    options: Options,
) -> str:
    """Everything a deploy reads. Equal to the live generation's: nothing to do, without running uv."""
    return digest_json(
        {
            "lock": lock_sha256,
            "pyprojects": dict(pyprojects),
            "python-version": python_version_file,
            "members": dict(member_hashes),
            "options": options.to_json(),
        }
    )


def effective_digest(
    *, export_sha256: str, member_hashes: Mapping[str, str], interpreter: Mapping[str, Any], options: Options
) -> str:
    """What the environment will contain. Equal to the live generation's: unchanged, even if inputs moved.

    ``export_sha256`` covers only the packages the selected groups install, so a lock edit elsewhere
    (a dev tool bumped) does not count.
    """
    return digest_json(
        {
            "export": export_sha256,
            "members": dict(member_hashes),
            "interpreter": {k: interpreter[k] for k in ("realpath", "mtime_ns", "size")},
            "options": options.to_json(),
        }
    )


def interpreter_unchanged(recorded: Mapping[str, Any], now: Mapping[str, Any] | None) -> bool:
    """The interpreter a generation was built on is still there, byte-for-byte the same file (by stat)."""
    if now is None:
        return False
    return all(recorded.get(k) == now.get(k) for k in ("realpath", "mtime_ns", "size"))


def undefined_groups(requested: Sequence[str], defined: Sequence[str]) -> list[str]:
    return sorted(set(requested) - set(defined))


def diff_packages(old: Mapping[str, str], new: Mapping[str, str]) -> PackageDiff:
    added = [{"name": n, "old": "", "new": new[n]} for n in sorted(set(new) - set(old))]
    removed = [{"name": n, "old": old[n], "new": ""} for n in sorted(set(old) - set(new))]
    changed = [
        {"name": n, "old": old[n], "new": new[n]} for n in sorted(set(old) & set(new)) if old[n] != new[n]
    ]
    return PackageDiff(added, removed, changed)
