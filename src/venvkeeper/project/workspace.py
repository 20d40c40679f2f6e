"""Reading a uv project or workspace and its lock, without changing either.

The lock is the authority on what the workspace is: its ``[manifest]`` names the members, and each
member's ``source`` says where it lives and whether it is a package (``editable``, built and
installed) or virtual (only its dependencies are installed).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from venvkeeper.core.config import Config, parse_config
from venvkeeper.core.errors import ConfigError, LockError
from venvkeeper.core.lazy import lazy
from venvkeeper.core.names import canonicalize_name

# packaging is read only to name a stale member: not on the no-op path.
if TYPE_CHECKING:
    from packaging import requirements
else:
    requirements = lazy("packaging.requirements")

__all__ = ["LockedMember", "Workspace", "load_lock_members", "load_workspace", "stale_member"]


@dataclass(frozen=True)
class LockedMember:
    name: str  # canonical
    path: str  # relative POSIX path from the workspace root; "." for the root
    package: bool  # built and installed; False for virtual members

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "package": self.package}


@dataclass(frozen=True)
class Workspace:
    root: Path
    pyproject: dict[str, Any]
    config: Config
    lock_path: Path
    lock_bytes: bytes

    @property
    def root_name(self) -> str | None:
        project = self.pyproject.get("project")
        return canonicalize_name(project["name"]) if isinstance(project, dict) and "name" in project else None


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: not found", hint=f"give the directory that holds the project's {what}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", hint="check its permissions") from exc
    try:
        return tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the file's syntax") from exc


def load_workspace(project_dir: Path) -> Workspace:
    """Read the root ``pyproject.toml``, its ``[tool.venvkeeper]`` table and the bytes of ``uv.lock``."""
    root = project_dir.resolve()
    if not root.is_dir():
        raise ConfigError(f"{project_dir}: not a directory", hint="give the project's root directory")
    pyproject_path = root / "pyproject.toml"
    pylocks = sorted(root.glob("pylock*.toml")) if not pyproject_path.exists() else []
    if pylocks:  # a requirements.txt + pylock.toml project: no pyproject.toml, the lock alone
        raise ConfigError(
            f"{pyproject_path}: not found, but {pylocks[0].name} is there",
            hint=f"a PEP 751 lock alone is deployed and verified with --lock {pylocks[0]}",
        )
    pyproject = _read_toml(pyproject_path, "pyproject.toml")
    config = parse_config(pyproject, pyproject_path)
    lock_path = root / "uv.lock"
    try:
        lock_bytes = lock_path.read_bytes()
    except FileNotFoundError:
        raise LockError(
            f"{lock_path}: missing; venvkeeper deploys only locked projects",
            hint=f"run `uv lock` in {root} and commit uv.lock",
        ) from None
    except OSError as exc:
        raise LockError(f"{lock_path}: cannot read: {exc.strerror}", hint="check its permissions") from exc
    return Workspace(root, pyproject, config, lock_path, lock_bytes)


def parse_lock(workspace: Workspace) -> dict[str, Any]:
    try:
        data = tomllib.loads(workspace.lock_bytes.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LockError(
            f"{workspace.lock_path}: corrupt ({exc})",
            hint=f"restore it from git (git checkout -- uv.lock) or run `uv lock` in {workspace.root}",
        ) from exc
    if not isinstance(data.get("package"), list) or "version" not in data:
        raise LockError(
            f"{workspace.lock_path}: not a uv lock (no version or [[package]] entries)",
            hint=f"run `uv lock` in {workspace.root}",
        )
    return data


def load_lock_members(workspace: Workspace, lock: dict[str, Any]) -> tuple[LockedMember, ...]:
    """The workspace members, from the lock: a member is a package when uv locked it as editable."""
    names = lock.get("manifest", {}).get("members")
    wanted = {canonicalize_name(n) for n in names} if names else set()
    if workspace.root_name:
        wanted.add(workspace.root_name)
    members: list[LockedMember] = []
    for pkg in lock["package"]:
        name = canonicalize_name(str(pkg.get("name", "")))
        source = pkg.get("source", {})
        if name not in wanted or not isinstance(source, dict):
            continue
        if "editable" in source:
            members.append(LockedMember(name, _relpath(source["editable"]), True))
        elif "virtual" in source:
            members.append(LockedMember(name, _relpath(source["virtual"]), False))
        elif "directory" in source:
            members.append(LockedMember(name, _relpath(source["directory"]), True))
    if not members:
        raise LockError(
            f"{workspace.lock_path}: names no workspace member",
            hint=f"run `uv lock` in {workspace.root}",
        )
    for member in members:
        if not (workspace.root / member.path / "pyproject.toml").is_file():
            raise LockError(
                f"{workspace.lock_path}: member {member.name} is locked at {member.path}/, "
                "which has no pyproject.toml",
                hint=f"run `uv lock` in {workspace.root} and commit uv.lock",
            )
    return tuple(sorted(members, key=lambda m: m.name))


def _relpath(value: str) -> str:
    return Path(value).as_posix() or "."


def _requirement_key(text: str) -> tuple[str, str] | None:
    try:
        req = requirements.Requirement(text)
    except requirements.InvalidRequirement:
        return None
    return canonicalize_name(req.name), str(req.specifier)


def stale_member(
    workspace: Workspace, lock: dict[str, Any], members: tuple[LockedMember, ...]
) -> Path | None:
    """The first member pyproject.toml whose dependencies differ from what the lock recorded.

    uv's own check decides whether the lock is current; this only finds which file to name.
    """
    by_name = {canonicalize_name(str(p.get("name", ""))): p for p in lock["package"]}
    for member in members:
        path = workspace.root / member.path / "pyproject.toml"
        try:
            project = tomllib.loads(path.read_text()).get("project", {})
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return path
        if "dependencies" in project.get("dynamic", []):
            continue  # only the build backend knows them: uv's check alone can tell
        declared = {_requirement_key(d) for d in project.get("dependencies", [])}
        recorded_entries = by_name.get(member.name, {}).get("metadata", {}).get("requires-dist", [])
        recorded = {
            (
                canonicalize_name(e["name"]),
                str(requirements.Requirement(f"x{e.get('specifier', '')}").specifier),
            )
            for e in recorded_entries
            if "name" in e
        }
        if declared != recorded:
            return path
    return None
