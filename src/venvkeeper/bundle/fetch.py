"""The lock's wheels for a target, fetched from the lock's own URLs into a download cache.

uv has no command that downloads a lock's files, and its offline mode will not take them from a
directory instead (the lock's URLs win), so ``pack`` does it here. Three steps, the first two pure:

- :func:`runtime_packages` walks uv.lock's dependency graph from the workspace members for one
  marker environment: what a sync for that target installs, the members left out;
- :func:`select_wheels` picks each package's best wheel for the target's tags (packaging.tags),
  and :func:`select_sdists` the locked sdist of a package with none (``pack`` builds it);
- :func:`download` fetches them in parallel, each checked against the lock's sha256 before it
  enters the cache (``<cache>/<sha256[:2]>/<sha256>/<file>``), and reuses what the cache holds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from packaging import tags
from packaging.markers import InvalidMarker, Marker, default_environment
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from venvkeeper import __version__
from venvkeeper.core.errors import ConfigError, LockError, VenvkeeperError
from venvkeeper.core.names import canonicalize_name

__all__ = [
    "Artifact",
    "FetchError",
    "Target",
    "cache_path",
    "default_cache_dir",
    "download",
    "expand_platform",
    "runtime_packages",
    "select_sdists",
    "select_wheels",
    "target_for",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0  # per connection attempt and per read, not for the whole file
_RETRY_DELAYS_S = (0.5, 2.0)  # transient failures only: a refused connection fails at once


class FetchError(VenvkeeperError):
    """A locked file could not be fetched, or what was fetched is not what uv.lock says."""

    code = "fetch"


# -- the target ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The interpreter and platform a bundle is for: ``python`` is ``X.Y``, ``implementation`` ``cp``."""

    python: str
    implementation: str
    platforms: tuple[str, ...]  # most specific first, as packaging.tags.platform_tags() gives them

    @classmethod
    def current(cls) -> Target:
        """This interpreter: its tags are exactly ``packaging.tags.sys_tags()`` (on CPython)."""
        return _current_target()

    @property
    def label(self) -> str:
        """``cp311-manylinux_2_36_x86_64``: the interpreter and its newest portable platform, for messages."""
        # packaging puts this machine's own linux_<arch> first; a manylinux tag says more to a reader.
        platform = next((p for p in self.platforms if not p.startswith("linux_")), self.platforms[0])
        return f"{self.implementation}{self.python.replace('.', '')}-{platform}"

    def to_json(self) -> dict[str, Any]:
        # cpython_tags() accepts abi3 wheels: every CPython since 3.2 loads them.
        abi3 = self.implementation == "cp"
        return {
            "python": self.python,
            "implementation": self.implementation,
            "platforms": list(self.platforms),
            "abi3": abi3,
        }

    def tags(self) -> list[tags.Tag]:
        """The wheel tags this target accepts, best first."""
        major, minor = self.python.split(".")
        version = (int(major), int(minor))
        interpreter = f"{self.implementation}{major}{minor}"
        if self.implementation == "cp":
            # This interpreter's own ABIs (a debug build's "d") only when the target is this Python.
            abis = None if version == sys.version_info[:2] else [interpreter]
            found = list(tags.cpython_tags(python_version=version, abis=abis, platforms=self.platforms))
        else:
            found = list(tags.generic_tags(interpreter=interpreter, platforms=self.platforms))
        found += tags.compatible_tags(
            python_version=version, interpreter=interpreter, platforms=self.platforms
        )
        return found

    def marker_environment(self) -> dict[str, str]:
        """The PEP 508 environment the lock's markers are evaluated in for this target."""
        current = _current_target()
        env = {key: str(value) for key, value in default_environment().items()}
        if self.platforms != current.platforms:
            env.update(_platform_markers(self.platforms[0]))
        if (self.python, self.implementation) != (current.python, current.implementation):
            # Another Python's patch release is not known: X.Y.0 (uv's markers bound X.Y).
            full = f"{self.python}.0"
            name, python_name = {"cp": ("cpython", "CPython"), "pp": ("pypy", "PyPy")}.get(
                self.implementation, (self.implementation, "")
            )
            env.update(
                python_version=self.python,
                python_full_version=full,
                implementation_version=full,
                implementation_name=name,
                platform_python_implementation=python_name,
            )
        return env


@functools.cache
def _current_target() -> Target:
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return Target(python, tags.interpreter_name(), tuple(tags.platform_tags()))


_LINUX = re.compile(
    r"(?:manylinux_\d+_\d+|manylinux1|manylinux2010|manylinux2014|musllinux_\d+_\d+|linux)_(\w+)"
)
_MAC = re.compile(r"macosx_(\d+)_(\d+)_(\w+)")
_MAC_ARCH = {"intel": "x86_64", "universal2": "arm64", "universal": "x86_64", "fat64": "x86_64"}
_WINDOWS = {"win32": "x86", "win_amd64": "AMD64", "win_arm64": "ARM64"}
_OS_MARKERS = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
    "mac": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"},
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
}


def _platform_markers(platform: str) -> dict[str, str]:
    if match := _LINUX.fullmatch(platform):
        system, machine = "linux", match.group(1)
    elif match := _MAC.fullmatch(platform):
        system, machine = "mac", _MAC_ARCH.get(match.group(3), match.group(3))
    elif platform in _WINDOWS:
        system, machine = "windows", _WINDOWS[platform]
    else:
        raise ConfigError(
            f"platform tag {platform}: venvkeeper cannot tell which operating system it is",
            hint="give a manylinux_*, musllinux_*, linux_*, macosx_* or win_* platform tag",
        )
    # platform_release and platform_version describe one kernel build: unknown for another host.
    return {
        **_OS_MARKERS[system],
        "platform_machine": machine,
        "platform_release": "",
        "platform_version": "",
    }


_MANYLINUX = re.compile(r"manylinux_2_(\d+)_(\w+)")
_MUSLLINUX = re.compile(r"musllinux_1_(\d+)_(\w+)")
_LEGACY_MANYLINUX = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}


def expand_platform(platform: str) -> tuple[str, ...]:
    """Every platform tag a host of ``platform`` also runs, best first.

    ``manylinux_2_17_x86_64`` runs every older glibc's wheels, under the new names and the legacy
    aliases (manylinux2014, manylinux2010, manylinux1), then ``linux_x86_64``: last, where packaging
    puts a machine's own first, because on another host a portable wheel is the safer choice.
    """
    for legacy, glibc in _LEGACY_MANYLINUX.items():
        if platform.startswith(legacy + "_"):
            platform = f"manylinux_2_{glibc}_{platform.removeprefix(legacy + '_')}"
    if match := _MANYLINUX.fullmatch(platform):
        newest, arch = int(match.group(1)), match.group(2)
        x86 = arch in ("x86_64", "i686")  # glibc 2.17 is the oldest manylinux of every other architecture
        expanded: list[str] = []
        for glibc in range(newest, 4 if x86 else 16, -1):
            expanded.append(f"manylinux_2_{glibc}_{arch}")
            expanded += (
                f"{name}_{arch}" for name, g in _LEGACY_MANYLINUX.items() if g == glibc and (x86 or g == 17)
            )
        return (*expanded, f"linux_{arch}")
    if match := _MUSLLINUX.fullmatch(platform):
        newest, arch = int(match.group(1)), match.group(2)
        return (*(f"musllinux_1_{minor}_{arch}" for minor in range(newest, -1, -1)), f"linux_{arch}")
    if match := _MAC.fullmatch(platform):
        return tuple(tags.mac_platforms((int(match.group(1)), int(match.group(2))), match.group(3)))
    return (platform,)


def target_for(python: str | None = None, platforms: Sequence[str] = ()) -> Target:
    """The target of ``--python X.Y`` and ``--platform TAG``...: this machine's for what is not given."""
    current = _current_target()
    if python is not None and not re.fullmatch(r"3\.\d+", python):
        raise ConfigError(f"--python {python}: not a Python version", hint="give major.minor, e.g. 3.11")
    expanded: list[str] = []
    for platform in platforms:
        if not re.fullmatch(r"[a-z0-9_]+", platform):
            raise ConfigError(
                f"--platform {platform}: not a platform tag",
                hint="e.g. manylinux_2_17_x86_64, macosx_11_0_arm64 or win_amd64",
            )
        # One kind of machine (and one venvkeeper can name): the lock's markers are evaluated once.
        machine = _platform_markers(platform)
        if expanded and machine != _platform_markers(expanded[0]):
            raise ConfigError(
                f"--platform {platform}: not the same system and machine as --platform {platforms[0]}",
                hint="pack one bundle per kind of machine",
            )
        expanded += (tag for tag in expand_platform(platform) if tag not in expanded)
    return Target(python or current.python, current.implementation, tuple(expanded) or current.platforms)


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
    by_name: dict[str, list[_Package]] = {}
    for package in lock.get("package", []):
        by_name.setdefault(canonicalize_name(str(package["name"])), []).append(package)
    roots = {canonicalize_name(name) for name in members} if members is not None else _members(lock)
    _check_groups(lock, [p for name in roots for p in by_name.get(name, [])], groups, extras)
    queue: deque[tuple[_Package, str | None]] = deque()
    seen: set[tuple[int, str | None]] = set()

    def follow(dependency: Mapping[str, Any], where: str) -> None:
        marker = dependency.get("marker")
        try:
            if marker and not _marker(str(marker)).evaluate(env):
                return
        except InvalidMarker as exc:
            raise LockError(
                f"uv.lock: {where}: invalid marker {marker!r}: {exc}", hint="run `uv lock`"
            ) from exc
        name = canonicalize_name(str(dependency["name"]))
        # Where uv locked several versions (a fork), the entry names the version and source it means.
        found = [
            p
            for p in by_name.get(name, [])
            if all(dependency.get(k, p.get(k)) == p.get(k) for k in ("version", "source"))
        ]
        if len(found) != 1:
            raise LockError(
                f"uv.lock: {where} depends on {name}, which matches {len(found)} locked packages",
                hint="run `uv lock`",
            )
        for extra in (None, *dependency.get("extra", ())):
            if (id(found[0]), extra) not in seen:
                seen.add((id(found[0]), extra))
                queue.append((found[0], extra))

    for name in sorted(roots):
        for package in by_name.get(name, []):
            asked = sorted(extras & set(package.get("optional-dependencies", {})))
            follow(
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
                    follow(dependency, f"{name} (group {group})")
    # A workspace root that is not a project keeps its requirements in the lock's [manifest].
    manifest = lock.get("manifest", {})
    for dependency in manifest.get("requirements", []):
        follow(dependency, "the workspace root")
    for group in sorted(groups):
        for dependency in manifest.get("dependency-groups", {}).get(group, []):
            follow(dependency, f"the workspace root (group {group})")

    reached: dict[str, _Package] = {}
    while queue:
        package, extra = queue.popleft()
        where = _pin(package) + (f"[{extra}]" if extra else "")
        optional = package.get("optional-dependencies", {})
        for dependency in package.get("dependencies", []) if extra is None else optional.get(extra, []):
            follow(dependency, where)
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


# -- fetching ----------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/venvkeeper/wheels``, else ``~/.cache/venvkeeper/wheels``; for a user who
    cannot write there (a service user whose home is missing or unreadable), a per-user directory
    under the temporary directory, as for uv's cache."""
    from venvkeeper.gateways.uv import per_user_dir, unusable_reason  # noqa: PLC0415

    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # A relative XDG_CACHE_HOME is to be ignored (XDG base directory specification).
    try:
        wanted = (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "venvkeeper" / "wheels"
    except RuntimeError:  # no HOME and no passwd entry to take it from
        return per_user_dir("venvkeeper-wheels")
    return wanted if unusable_reason(str(wanted)) is None else per_user_dir("venvkeeper-wheels")


def cache_path(cache_dir: Path, artifact: Artifact) -> Path:
    return cache_dir / artifact.sha256[:2] / artifact.sha256 / artifact.filename


def download(
    artifacts: Iterable[Artifact],
    cache_dir: Path,
    *,
    jobs: int = 8,
    progress: bool,
    timeout: float = _TIMEOUT_S,
) -> dict[str, Path]:
    """Each artifact's file in the cache (filename -> path), fetched when the cache lacks it.

    A cached file is used only when it still hashes to the lock's sha256; a download is hashed as
    it streams into a temporary file in ``cache_dir`` and renamed into place only when it matches,
    so the cache never holds a file the lock did not name. Up to ``jobs`` files at once; after a
    failure no new one starts, and the error names the first failed file (the others below it).
    """
    unique: dict[str, Artifact] = {}
    for artifact in artifacts:
        # Both become a path in the cache: a plain file name and a hex digest, nothing else.
        name = artifact.filename
        if not _SHA256.fullmatch(artifact.sha256) or not name or name[0] == "." or {"/", "\\"} & set(name):
            raise FetchError(
                f"{name!r} (sha256 {artifact.sha256!r}): not a file venvkeeper can cache",
                hint="run `uv lock`",
            )
        if unique.setdefault(name, artifact).sha256 != artifact.sha256:
            raise FetchError(f"{name}: locked with two different sha256", hint="run `uv lock`")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(
            f"{cache_dir}: cannot create the download cache: {exc.strerror}",
            hint="make it writable, or point XDG_CACHE_HOME elsewhere",
        ) from exc
    work = sorted(unique.values(), key=lambda a: a.filename)
    if not work:
        return {}
    with (
        _progress(len(work), enabled=progress) as advance,
        ThreadPoolExecutor(max(1, min(jobs, len(work)))) as pool,
    ):
        futures = [pool.submit(_fetch_one, artifact, cache_dir, timeout) for artifact in work]
        for future in futures:
            future.add_done_callback(lambda _: advance())
        wait(futures, return_when=FIRST_EXCEPTION)
        pool.shutdown(cancel_futures=True)  # after a failure: the queued files do not start
    failures = [error for f in futures if not f.cancelled() and (error := f.exception()) is not None]
    if failures:
        if isinstance(failures[0], FetchError) and len(failures) > 1:
            failures[0].detail = "\n".join(["also:", *map(str, failures[1:])])
        raise failures[0]
    return {artifact.filename: future.result() for artifact, future in zip(work, futures, strict=True)}


def _fetch_one(artifact: Artifact, cache_dir: Path, timeout: float) -> Path:
    final = cache_path(cache_dir, artifact)
    if final.is_file():
        with contextlib.suppress(OSError), final.open("rb") as fh:
            if hashlib.file_digest(fh, "sha256").hexdigest() == artifact.sha256:
                return final
    if urllib.parse.urlsplit(artifact.url).scheme not in ("http", "https", "file"):
        raise FetchError(
            f"{artifact.filename}: cannot download {artifact.url!r}: not an http(s) or file URL",
            hint="run `uv lock` against an index served over HTTP(S)",
        )
    temporary: str | None = None
    try:
        fd, temporary = tempfile.mkstemp(dir=cache_dir, prefix=f".{artifact.filename}.", suffix=".part")
        with os.fdopen(fd, "wb") as out:
            actual = _stream_with_retries(artifact, out, timeout)
        if actual != artifact.sha256:
            raise FetchError(
                f"{artifact.filename}: downloaded from {artifact.url}, sha256 {actual}, not uv.lock's "
                f"{artifact.sha256}",
                hint="the index serves another file than the one locked (replaced, or altered on the way); "
                "nothing was cached. Re-lock (`uv lock`) only if you trust the new file",
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, final)
    except OSError as exc:
        raise FetchError(
            f"{cache_dir}: cannot write {artifact.filename} to the download cache: {exc.strerror}",
            hint="check the cache's free space and permissions",
        ) from exc
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    return final


class _TransientError(Exception):
    """A failure worth another try: a timeout, a dropped connection, an overloaded index."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error


def _stream_with_retries(artifact: Artifact, out: BinaryIO, timeout: float) -> str:
    for delay in _RETRY_DELAYS_S:
        try:
            return _stream(artifact, out, timeout)
        except _TransientError:
            time.sleep(delay)
            out.seek(0)
            out.truncate()
    try:
        return _stream(artifact, out, timeout)
    except _TransientError as exc:
        raise exc.error from exc.__cause__


def _network_error(artifact: Artifact, exc: BaseException) -> FetchError:
    reason = getattr(exc, "reason", None) or exc
    if artifact.url.startswith("file:"):
        return FetchError(
            f"{artifact.filename}: cannot read {artifact.url}: {reason}",
            hint="the lock names a local file that is not there; run `uv lock`",
        )
    return FetchError(
        f"{artifact.filename}: cannot download {artifact.url}: the index is unreachable ({reason})",
        hint="check that this host reaches the index (network, proxy, firewall); files already in the "
        "download cache are not fetched again",
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every download: urllib would build a new one per file, loading the
    system's certificates each time, which costs more than the downloads themselves."""
    return ssl.create_default_context()


def _stream(artifact: Artifact, out: BinaryIO, timeout: float) -> str:
    """Copy the URL's body into ``out``; its sha256 (hex)."""
    # The scheme is http, https or file: _fetch_one checked it.
    request = urllib.request.Request(artifact.url, headers={"User-Agent": f"venvkeeper/{__version__}"})  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=timeout, context=_tls())  # noqa: S310
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket
        error = FetchError(
            f"{artifact.filename}: {artifact.url} answered HTTP {exc.code} {exc.reason}",
            hint="the index no longer serves the locked file, or wants credentials",
        )
        if exc.code in (408, 429) or exc.code >= 500:
            raise _TransientError(error) from exc
        raise error from exc
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, ConnectionRefusedError) or isinstance(
            getattr(exc, "reason", None), ConnectionRefusedError
        ):
            raise _network_error(
                artifact, exc
            ) from exc  # nothing listens: a second try would not change that
        raise _TransientError(_network_error(artifact, exc)) from exc
    digest = hashlib.sha256()
    with response:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _TransientError(_network_error(artifact, exc)) from exc
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
            out.write(chunk)


@contextlib.contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr, advanced once per file (fetched or found in the cache)."""
    if not enabled:
        yield lambda: None
        return
    # Imported only for a terminal: rich costs start-up time that a pipe need not pay.
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    columns = (TextColumn("fetching wheels"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("fetch", total=total)
        yield lambda: bar.advance(task)
