"""What a deploy reads from a project's source tree, gathered once: members, their hashes, the inputs.

Shared by deploy, heal's redeploy and update's candidate: each decides from these facts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from venvkeeper.gateways import git as gitcmd
from venvkeeper.project import plan, vcsversion
from venvkeeper.project.hashing import digest_entries, digest_json, member_files, tree_entries
from venvkeeper.project.workspace import LockedMember, Workspace, load_lock_members, parse_lock


class ProjectFacts:
    """What a deploy reads from the source tree, gathered once."""

    def __init__(
        self,
        workspace: Workspace,
        members: tuple[LockedMember, ...],
        options: plan.Options,
        lock_sha256: str,
        requires_python: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.members = members
        self.requires_python = requires_python  # the lock's (uv resolved for it), when known
        root = workspace.root
        self.files = gitcmd.list_files(root)
        paths = [m.path for m in members]
        # Each member's files with their hashes: sealed with the generation, so verify --project can
        # name the very file that changed since.
        self.member_entries = {
            m.name: tree_entries(root, member_files(self.files, m.path, paths)) for m in members if m.package
        }
        self.member_hashes = {name: digest_entries(entries) for name, entries in self.member_entries.items()}
        self.file_hashes = dict(self.member_hashes)  # the files alone, before any version inputs
        # A version from git changes with a tag, a commit or an edit elsewhere in the repository:
        # those join such a member's hash, so its cached wheel is not reused at the old version.
        self.dynamic = vcsversion.dynamic_versions(root, [(m.name, m.path) for m in members if m.package])
        self.in_git = bool(self.dynamic) and gitcmd.is_work_tree(root)
        if self.dynamic:
            extra = vcsversion.version_inputs(root, self.dynamic, in_git=self.in_git)
            for d in self.dynamic:
                self.member_hashes[d.member] = digest_json({"files": self.member_hashes[d.member], **extra})
        pyprojects = {}
        for m in members:
            pyprojects[m.path] = hashlib.sha256((root / m.path / "pyproject.toml").read_bytes()).hexdigest()
        python_version = root / ".python-version"
        self.python_version_file = python_version.read_text().strip() if python_version.is_file() else None
        self.lock_sha256 = lock_sha256
        # What decides whether the lock is current: if equal to the live generation's, it still is.
        self.lock_inputs = digest_json({"lock": self.lock_sha256, "pyprojects": pyprojects})
        self.inputs = plan.inputs_digest(
            lock_sha256=self.lock_sha256,
            pyprojects=pyprojects,
            python_version_file=self.python_version_file,
            member_hashes=self.member_hashes,
            options=options,
        )


def members_for(
    workspace: Workspace, lock_sha: str, recorded_lock_sha: str | None, recorded: Sequence[Mapping[str, Any]]
) -> tuple[tuple[LockedMember, ...], dict[str, Any] | None]:
    """Members from the live generation's record (its lock's sha256, its members) when the lock is the
    same bytes (no TOML parse); else from the lock, returned too."""
    if recorded_lock_sha == lock_sha and recorded:
        return tuple(LockedMember(m["name"], m["path"], m["package"]) for m in recorded), None
    lock = parse_lock(workspace)
    return load_lock_members(workspace, lock), lock


def defined_groups(lock: dict[str, Any], members: Sequence[LockedMember]) -> list[str]:
    names = {m.name for m in members}
    groups: set[str] = set()
    for pkg in lock["package"]:
        if pkg.get("name") in names:
            groups.update(pkg.get("dev-dependencies", {}))
            groups.update(pkg.get("metadata", {}).get("requires-dev", {}))
    return sorted(groups)
