"""A PEP 751 lock (``pylock.toml``) as the source of truth: read it, select what it installs here.

A project shaped as a hand-kept ``requirements.txt`` plus a resolved ``pylock.toml`` (no
``pyproject.toml``, no ``uv.lock``) is deployed, installed, verified and audited from the lock
alone. The lock is validated and selected with ``packaging.pylock`` (its markers, ``environments``,
``requires-python`` and the wheel tags, for the interpreter the environment runs, not venvkeeper's
own); what it selects is a list of :class:`LockedWheel`, each with the sha256 the lock gives.
Pure: no uv, no network (the files are fetched, and their hashes checked, by the caller).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging import tags as packaging_tags
from packaging.pylock import (
    PackageWheel,
    Pylock,
    PylockSelectError,
    PylockValidationError,
)

from venvkeeper.core.errors import LockError
from venvkeeper.project.wheeltags import summary

__all__ = [
    "LockedWheel",
    "check_file",
    "is_pylock",
    "load",
    "requirements_text",
    "select",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LockedWheel:
    """One wheel the lock installs here: ``location`` is an http(s)/file URL, or a local path."""

    name: str  # canonical
    version: str
    filename: str
    location: str
    sha256: str  # hex
    size: int | None

    @property
    def local(self) -> Path | None:
        """The wheel's file when the lock names one on this machine (``path``, or a ``file:`` URL)."""
        parts = urllib.parse.urlsplit(self.location)
        if parts.scheme == "file":
            return Path(urllib.parse.unquote(parts.path))
        return None if parts.scheme in ("http", "https") else Path(self.location)

    @property
    def url(self) -> str:
        local = self.local
        return local.resolve().as_uri() if local is not None else self.location


def is_pylock(path: Path) -> bool:
    """PEP 751's names: ``pylock.toml`` or ``pylock.NAME.toml``."""
    name = path.name
    return name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml"))


def load(path: Path) -> Pylock:
    """The lock read and validated (PEP 751), or a LockError of one line naming the file."""
    if not is_pylock(path):
        raise LockError(
            f"{path}: not a PEP 751 lock file name", hint="name it pylock.toml or pylock.NAME.toml"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LockError(f"{path}: cannot be read: {exc.strerror or exc}", hint="check the path") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LockError(f"{path}: not valid TOML: {exc}", hint="write it again (uv export)") from None
    try:
        return Pylock.from_dict(raw)
    except PylockValidationError as exc:
        raise LockError(
            f"{path}: not a valid PEP 751 lock: {exc}", hint="write it again (uv export)"
        ) from None


def _describe(markers: Mapping[str, str]) -> str:
    return (
        f"{markers.get('implementation_name', 'python')} {markers.get('python_full_version', '?')} "
        f"on {markers.get('sys_platform', '?')} {markers.get('platform_machine', '?')}"
    )


def _covers(lock: Pylock) -> str:
    parts = [str(m) for m in lock.environments or ()]
    if lock.requires_python:
        parts.append(f"requires-python {lock.requires_python}")
    return "; ".join(parts) or "no environments"


def select(
    path: Path,
    lock: Pylock,
    markers: Mapping[str, str],
    tags: Sequence[packaging_tags.Tag],
    groups: Sequence[str] | None = None,
) -> list[LockedWheel]:
    """The wheels ``lock`` installs for an interpreter with these markers and tags, sorted by name.

    A lock that does not cover this interpreter or platform, a package with no wheel for it, or one
    locked as a source tree (sdist, directory, VCS: nothing to check a hash against here) is one
    LockError naming the lock and the interpreter.
    """
    here = _describe(markers)
    # The lock's environments are checked here, not left to select(): the refusal names what the
    # lock supports and what this interpreter is, in one line.
    covered = not lock.environments or any(
        marker.evaluate(dict(markers), context="requirement") for marker in lock.environments
    )
    if not covered:
        raise LockError(
            f"{path}: does not cover {here}: it supports {_covers(lock)}",
            hint="lock for this interpreter and platform (uv pip compile --python-version, "
            "--python-platform), or pass --python",
        )
    try:
        chosen = list(
            dataclasses.replace(lock, environments=None).select(
                environment=dict(markers),  # type: ignore[arg-type]
                tags=tags,
                dependency_groups=groups,
            )
        )
    except PylockSelectError as exc:
        if "Python version requirement" in str(exc) and "for package" not in str(exc):
            raise LockError(
                f"{path}: does not cover {here}: it supports {_covers(lock)}",
                hint="lock for this interpreter (uv pip compile --python-version), or pass --python",
            ) from None
        _refuse_no_wheel(path, lock, exc, here, tags)
        raise LockError(f"{path}: {exc} ({here})", hint="lock again for this interpreter") from None
    wheels: list[LockedWheel] = []
    for package, artifact in chosen:
        if not isinstance(artifact, PackageWheel):
            kind = type(artifact).__name__.removeprefix("Package").lower()
            # Its wheels, if it has any, are for other tags (the sdist is packaging's fallback).
            others = f" (this interpreter takes {summary(tags)})" if package.wheels else ""
            raise LockError(
                f"{path}: {package.name}: locked as a {kind}, and has no wheel for {here}{others}",
                hint="lock wheels only (uv pip compile --only-binary :all:), or build the wheel and lock it",
            )
        wheels.append(_wheel(path, package.name, str(package.version or ""), artifact))
    return sorted(wheels, key=lambda w: w.name)


def _refuse_no_wheel(
    path: Path, lock: Pylock, exc: PylockSelectError, here: str, tags: Sequence[packaging_tags.Tag]
) -> None:
    """A package none of whose wheels this interpreter takes (another ABI: a cp313 wheel for a
    free-threaded 3.13t, a CPython wheel for PyPy): one line naming the package, its wheels and the
    interpreter's tags."""
    # packaging.pylock says which package only in its message: "... for package 'x' at packages[N]".
    found = re.search(r"for package '[^']*' at packages\[(\d+)\]", str(exc))
    if "No wheel found matching" not in str(exc) or found is None:
        return
    package = lock.packages[int(found.group(1))]
    names = ", ".join(w.filename for w in package.wheels or ())
    raise LockError(
        f"{path}: {package.name}: no locked wheel fits {here}: the lock has {names}; "
        f"this interpreter takes {summary(tags)}",
        hint="lock for this interpreter (uv pip compile --python PATH), or pass --python for one "
        "the lock has a wheel for",
    ) from None


def _wheel(path: Path, name: str, version: str, wheel: PackageWheel) -> LockedWheel:
    digest = str(wheel.hashes.get("sha256", "")).lower()
    if len(digest) != 64:
        raise LockError(
            f"{path}: {name}: {wheel.filename} has no sha256 to check it against",
            hint="lock against an index that publishes sha256 hashes",
        )
    if wheel.path is not None:
        location = (
            str((path.parent / wheel.path).resolve()) if not Path(wheel.path).is_absolute() else wheel.path
        )
    else:
        location = str(wheel.url)
    return LockedWheel(name, version, wheel.filename, location, digest, wheel.size)


def check_file(path: Path, wheel: LockedWheel, lock_path: Path) -> None:
    """A local wheel must hash to the lock's sha256 (one LockError line naming both otherwise)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise LockError(
            f"{lock_path}: {wheel.name}: {path}: cannot be read: {exc.strerror or exc}",
            hint="the lock names a local wheel: restore it, or lock again",
        ) from None
    if digest.hexdigest() != wheel.sha256:
        raise LockError(
            f"{lock_path}: {wheel.name}: {path} has sha256 {digest.hexdigest()}, "
            f"the lock says {wheel.sha256}",
            hint="the file is not the one locked: restore it, or lock again; nothing was installed",
        )


def requirements_text(files: Mapping[str, Path], wheels: Sequence[LockedWheel]) -> str:
    """``name @ file:///... --hash=sha256:...`` per wheel (``files``: filename -> local file), for
    ``uv pip install --require-hashes``: uv checks each hash again as it installs."""
    lines = [f"{w.name} @ {files[w.filename].resolve().as_uri()} --hash=sha256:{w.sha256}" for w in wheels]
    return "".join(line + "\n" for line in lines)
