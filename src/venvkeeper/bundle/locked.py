"""What uv.lock installs for a target: its packages, then the files of theirs that ``pack`` bundles.

Two pure steps over the lock's tables (no uv, no network):

- :func:`runtime_packages` walks uv.lock's dependency graph from the workspace members for one
  marker environment: what a sync for that target installs, the members left out;
- :func:`select_wheels` picks each package's best wheel for the target's tags (packaging.tags),
  and :func:`select_sdists` the locked sdist of a package with none (``pack`` builds it).

Each file is an :class:`Artifact`: its lock URL and sha256, which :mod:`venvkeeper.bundle.fetch`
downloads and checks.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.markers import InvalidMarker, Marker
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from venvkeeper.bundle.target import Target
from venvkeeper.core.errors import ConfigError, LockError
from venvkeeper.core.names import canonicalize_name

__all__ = ["Artifact", "runtime_packages", "select_sdists", "select_wheels"]

_SHA256 = re.compile(r"[0-9a-f]{64}")

# -- what the target installs ----------------------------------------------------------------------

_Package = Mapping[str, Any]  # one [[package]] of uv.lock


@functools.cache
def _marker(text: str) -> Marker:
    return Marker(text)


def _pin(package: _Package) -> str:
    name = canonicalize_name(str(package["name"]))
    return f"{name}=={package['version']}" if "version" in package else name


def _members(lock: Mapping[str, Any]) -> set[str]:
    names = lock.get("manifest", {}).get("members")
    if names:
        return {canonicalize_name(str(name)) for name in names}
    # A single project has no [manifest]: its root is the package locked from ".".
    return {
        canonicalize_name(str(package["name"]))
        for package in lock.get("package", [])
        if isinstance(source := package.get("source"), dict)
        and "." in (source.get("editable"), source.get("virtual"), source.get("directory"))
    }


def runtime_packages(
    lock: Mapping[str, Any],
    groups: Iterable[str] = (),
    markers_env: Mapping[str, str] | None = None,
    *,
    extras: Iterable[str] = (),
    members: Iterable[str] | None = None,
) -> list[str]:
    """``name==version`` of every package a sync of the workspace installs in ``markers_env``, sorted.

    The graph is walked from every member (uv's ``--all-packages``): their dependencies, exactly the
    dependency groups in ``groups`` and the members' optional dependencies in ``extras``, following
    extras (``foo[bar]``) and evaluating each edge's marker. This is :mod:`venvkeeper.project.selection`'s
    rule, the set ``uv sync`` installs with ``selection.uv_args(groups)``: ``[tool.uv]
    default-groups`` is never read (``dev`` too comes in only when named).
    Members are left out; a local package that is not a member stays in (it has no wheel to fetch,
    so :func:`select_wheels` reports it). ``members`` defaults to the lock's ``[manifest]``.
    """
    env = dict(markers_env) if markers_env is not None else Target.current().marker_environment()
    groups, extras = set(groups), {canonicalize_name(extra) for extra in extras}
    walk = _Walk(lock, env)
    roots = {canonicalize_name(name) for name in members} if members is not None else _members(lock)
    _check_groups(lock, [p for name in roots for p in walk.by_name.get(name, [])], groups, extras)
    walk.start(roots, groups, extras)
    return walk.finish(roots)


class _Walk:
    """uv.lock's dependency graph, walked breadth-first in one marker environment."""

    def __init__(self, lock: Mapping[str, Any], env: dict[str, str]) -> None:
        self.lock, self.env = lock, env
        self.by_name: dict[str, list[_Package]] = {}
        for package in lock.get("package", []):
            self.by_name.setdefault(canonicalize_name(str(package["name"])), []).append(package)
        self.queue: deque[tuple[_Package, str | None]] = deque()
        self.seen: set[tuple[int, str | None]] = set()

    def follow(self, dependency: Mapping[str, Any], where: str) -> None:
        """Queue the package ``dependency`` names (with its extras) when its marker holds."""
        marker = dependency.get("marker")
        try:
            if marker and not _marker(str(marker)).evaluate(self.env):
                return
        except InvalidMarker as exc:
            raise LockError(
                f"uv.lock: {where}: invalid marker {marker!r}: {exc}", hint="run `uv lock`"
            ) from exc
        name = canonicalize_name(str(dependency["name"]))
        # Where uv locked several versions (a fork), the entry names the version and source it means.
        found = [
            p
            for p in self.by_name.get(name, [])
            if all(dependency.get(k, p.get(k)) == p.get(k) for k in ("version", "source"))
        ]
        if len(found) != 1:
            raise LockError(
                f"uv.lock: {where} depends on {name}, which matches {len(found)} locked packages",
                hint="run `uv lock`",
            )
        for extra in (None, *dependency.get("extra", ())):
            if (id(found[0]), extra) not in self.seen:
                self.seen.add((id(found[0]), extra))
                self.queue.append((found[0], extra))

    def start(self, roots: set[str], groups: set[str], extras: set[str]) -> None:
        """Queue what the members ask for: themselves with ``extras``, and their ``groups``."""
        for name in sorted(roots):
            for package in self.by_name.get(name, []):
                asked = sorted(extras & set(package.get("optional-dependencies", {})))
                self.follow(
                    {
                        "name": name,
                        "version": package.get("version"),
                        "source": package.get("source"),
                        "extra": asked,
                    },
                    "the workspace",
                )
                for group in sorted(groups):
                    for dependency in package.get("dev-dependencies", {}).get(group, []):
                        self.follow(dependency, f"{name} (group {group})")
        # A workspace root that is not a project keeps its requirements in the lock's [manifest].
        manifest = self.lock.get("manifest", {})
        for dependency in manifest.get("requirements", []):
            self.follow(dependency, "the workspace root")
        for group in sorted(groups):
            for dependency in manifest.get("dependency-groups", {}).get(group, []):
                self.follow(dependency, f"the workspace root (group {group})")

    def finish(self, roots: set[str]) -> list[str]:
        """Follow the queue to its end; the pins of the packages reached that are not ``roots``."""
        reached: dict[str, _Package] = {}
        while self.queue:
            package, extra = self.queue.popleft()
            where = _pin(package) + (f"[{extra}]" if extra else "")
            optional = package.get("optional-dependencies", {})
            for dependency in package.get("dependencies", []) if extra is None else optional.get(extra, []):
                self.follow(dependency, where)
            name = canonicalize_name(str(package["name"]))
            if name not in roots and reached.setdefault(name, package) is not package:
                raise LockError(
                    f"uv.lock: {_pin(reached[name])} and {_pin(package)} both apply to one environment",
                    hint="run `uv lock`",
                )
        return sorted(_pin(package) for package in reached.values())


def _check_groups(lock: Mapping[str, Any], roots: list[_Package], groups: set[str], extras: set[str]) -> None:
    known = set(lock.get("manifest", {}).get("dependency-groups", {}))
    for package in roots:
        known.update(package.get("dev-dependencies", {}), package.get("metadata", {}).get("requires-dev", {}))
    if unknown := sorted(groups - known):
        raise ConfigError(
            f"--group {unknown[0]}: no workspace member defines it in uv.lock",
            hint=f"the lock's groups: {', '.join(sorted(known)) or 'none'}",
        )
    # uv writes [tool.uv.conflicts] as `extra == 'extra-N-pkg-x'` markers, which are false in every
    # marker environment: right while none of the conflicting extras or groups is asked for.
    for item in (item for conflict in lock.get("conflicts", []) for item in conflict):
        if item.get("group") in groups or canonicalize_name(str(item.get("extra", ""))) in extras:
            raise ConfigError(
                f"{item.get('group') or item.get('extra')}: in [tool.uv.conflicts], which "
                "venvkeeper cannot pack",
                hint="leave it out, or install with uv itself",
            )


# -- which files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """One file of the lock (or a member's built wheel): where it is, and what it must hash to."""

    name: str  # canonical
    version: str
    filename: str
    url: str  # http(s):// or file://; "" for a member's wheel built here
    sha256: str  # hex
    size: int | None
    kind: Literal["wheel", "sdist"]
    # A wheel built here from a locked sdist: that sdist (the bundle's pylock.toml says so).
    built_from: Artifact | None = None


def _locked(lock: Mapping[str, Any], pin: str) -> _Package:
    name, _, version = pin.partition("==")
    name = canonicalize_name(name.strip())
    found: list[_Package] = [
        package
        for package in lock.get("package", [])
        if canonicalize_name(str(package["name"])) == name and version.strip() in ("", package.get("version"))
    ]
    if len(found) != 1:
        versions = ", ".join(str(p.get("version")) for p in found) or "none"
        raise LockError(
            f"uv.lock: {pin}: {len(found)} locked packages match ({versions})",
            hint=f"run `uv lock`, or name one version: {name}==VERSION",
        )
    return found[0]


def _url(package: _Package, entry: Mapping[str, Any], root: Path | None) -> str:
    source = package.get("source", {})
    if "url" in entry:
        # Newer uv factors a common prefix out into `artifact-base`; the URLs below it are relative.
        return urllib.parse.urljoin(str(package.get("artifact-base", "")), str(entry["url"]))
    if "path" in entry:
        relative = str(entry["path"])
    elif "filename" in entry and "registry" in source:  # a directory of files as the index
        relative = f"{source['registry']}/{entry['filename']}"
    elif "filename" in entry and ("path" in source or "url" in source):
        relative = str(source.get("path") or source["url"])
    elif ("path" in source or "url" in source) and "subdirectory" not in source:
        # A direct reference to an sdist archive (`name @ file:///x.tar.gz`): uv.lock gives its
        # sdist a hash alone, the file being the source itself.
        relative = str(source.get("path") or source["url"])
    else:
        raise LockError(f"uv.lock: {_pin(package)}: a file with neither url nor path", hint="run `uv lock`")
    if urllib.parse.urlsplit(relative).scheme in ("http", "https", "file"):
        return relative
    if root is None:
        raise LockError(
            f"uv.lock: {_pin(package)}: {relative} is a local file, and no project root was given",
            hint="this is a bug in venvkeeper: select_wheels() needs root=",
        )
    return (root / relative).resolve().as_uri()


def _artifact(
    package: _Package, entry: Mapping[str, Any], root: Path | None, kind: Literal["wheel", "sdist"] = "wheel"
) -> Artifact:
    url = _url(package, entry, root)
    filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    algorithm, _, digest = str(entry.get("hash", "")).partition(":")
    if algorithm != "sha256" or not _SHA256.fullmatch(digest):
        raise LockError(
            f"uv.lock: {_pin(package)}: {filename} has no sha256 to check it against",
            hint="run `uv lock` against an index that publishes sha256 hashes",
        )
    size = entry.get("size")
    name, version = canonicalize_name(str(package["name"])), str(package.get("version", ""))
    return Artifact(name, version, filename, url, digest, size if isinstance(size, int) else None, kind)


def select_wheels(
    lock: Mapping[str, Any], package_names: Iterable[str], target: Target, *, root: Path | None = None
) -> tuple[list[Artifact], list[str]]:
    """The best wheel of each package for ``target`` (sorted by file name), and the packages with none.

    ``package_names`` are names or ``name==version`` pins (as :func:`runtime_packages` gives them;
    a name alone must be locked at one version). Best is the wheel whose best tag comes first in
    ``target.tags()``, as pip and uv choose. ``root`` (uv.lock's directory) is where the lock's
    relative paths start. The packages without a wheel are given as sorted pins.
    """
    rank = {tag: index for index, tag in enumerate(target.tags())}
    chosen: list[Artifact] = []
    missing: list[str] = []
    for pin in sorted(set(package_names)):
        package = _locked(lock, pin)
        candidates: list[tuple[tuple[int, int, str], Mapping[str, Any]]] = []
        for entry in package.get("wheels", []):
            location = str(entry.get("filename") or entry.get("url") or entry.get("path") or "")
            filename = urllib.parse.unquote(location.rsplit("/", 1)[-1])
            try:
                _, _, build, wheel_tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            if ranks := [rank[tag] for tag in wheel_tags if tag in rank]:
                # Equally good tags: the highest build number wins, and a build number beats none.
                candidates.append(((min(ranks), -build[0] if build else 1, filename), entry))
        if candidates:
            chosen.append(_artifact(package, min(candidates, key=lambda c: c[0])[1], root))
        else:
            missing.append(_pin(package))
    return sorted(chosen, key=lambda a: a.filename), missing


def select_sdists(
    lock: Mapping[str, Any], package_names: Iterable[str], *, root: Path | None = None
) -> tuple[list[Artifact], list[str]]:
    """The locked sdist of each package (sorted by file name), and the packages with none.

    For the packages :func:`select_wheels` found no wheel of: ``pack`` builds these sdists into
    wheels. Each keeps the lock's sha256, so the download is checked against it like a wheel.
    """
    chosen: list[Artifact] = []
    missing: list[str] = []
    for pin in sorted(set(package_names)):
        package = _locked(lock, pin)
        entry, source = package.get("sdist"), package.get("source", {})
        archive = ("path" in source or "url" in source) and "subdirectory" not in source
        if isinstance(entry, Mapping) and ({"url", "path", "filename"} & set(entry) or archive):
            chosen.append(_artifact(package, entry, root, "sdist"))
        else:
            missing.append(_pin(package))
    return sorted(chosen, key=lambda a: a.filename), missing
