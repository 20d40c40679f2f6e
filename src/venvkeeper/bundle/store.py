"""The bundles' wheels, unpacked once, by sha256, beside the generations.

``<env>.venvkeeper/wheels-store/<sha256>/<file>.whl``: each wheel a bundle installs, written whole
(renamed into place, so an entry is complete or absent) and installed by uv from there. uv keys a
local wheel by its path, so a stable path is what lets uv's cache serve every later install of the
same wheel instead of growing by the whole bundle each time.

Beside the generations rather than in the user's cache: that directory is always writable when an
install can run at all (a service user without a home, a read-only home), it is on the same file
system as the scratch directory the wheels are written in, and the generations kept there say which
entries are still wanted, so pruning is exact (:func:`prune`).

An entry found there is used only when it still hashes to the manifest's sha256 (:func:`intact`):
the store is a plain directory, and a file changed in it must never be installed; one that does not
match is replaced from the bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tomllib
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from venvkeeper.core import files as fsutil
from venvkeeper.generations.layout import Layout

__all__ = ["entry", "intact", "kept_by_uv", "missing", "pointed_pylock", "prune", "put", "root", "wheels_of"]


def root(layout: Layout) -> Path:
    return layout.home / "wheels-store"


def entry(layout: Layout, sha256: str, name: str) -> Path:
    return root(layout) / sha256 / name


def wheels_of(files: Mapping[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """The bundle's files under ``wheels/`` ({path: (size, sha256)}), the ones the store holds."""
    return {rel: found for rel, found in files.items() if rel.startswith("wheels/")}


def intact(path: Path, size: int, sha256: str) -> bool:
    """``path`` is a regular file (not a link) of that size and sha256: hashed in full, every time.

    A stat identity would be cheaper, but only as trustworthy as a record kept in the same writable
    directory; the manifest's sha256 is the one thing a tampered entry cannot match.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        return hashlib.file_digest(fh, "sha256").hexdigest() == sha256


def missing(layout: Layout, wheels: Mapping[str, tuple[int, str]]) -> set[str]:
    """The bundle paths (``wheels/<file>``) whose store entry is absent, or is not what the manifest says."""
    return {
        rel
        for rel, (size, sha256) in wheels.items()
        if not intact(entry(layout, sha256, rel.rpartition("/")[2]), size, sha256)
    }


def put(
    layout: Layout, extracted: Path, rels: Collection[str], wheels: Mapping[str, tuple[int, str]]
) -> None:
    """Move the wheels ``rels``, extracted (and hashed) under ``extracted``, into the store whole.

    Each sha256's directory is filled in ``extracted`` first, then renamed into place over whatever
    stood there (an entry that failed :func:`intact`), so a killed install leaves no partial entry.
    """
    by_sha: dict[str, list[str]] = {}
    for rel in sorted(rels):
        by_sha.setdefault(wheels[rel][1], []).append(rel)
    root(layout).mkdir(exist_ok=True)
    for sha256, group in by_sha.items():
        slot = extracted / "store" / sha256
        slot.mkdir(parents=True)
        for rel in group:
            os.rename(extracted / rel, slot / rel.rpartition("/")[2])
        # Names the store already holds for this sha256 stay (a wheel of the same bytes under
        # another name), when they are still intact.
        final = root(layout) / sha256
        for kept in _intact_names(final, sha256, exclude={r.rpartition("/")[2] for r in group}):
            os.rename(final / kept, slot / kept)
        fsutil.remove_tree(final)
        os.rename(slot, final)


def _intact_names(directory: Path, sha256: str, exclude: Collection[str]) -> list[str]:
    if not directory.is_dir() or directory.is_symlink():
        return []
    return [
        p.name for p in directory.iterdir() if p.name not in exclude and intact(p, p.lstat().st_size, sha256)
    ]


def pointed_pylock(raw: bytes, layout: Layout, wheels: Mapping[str, tuple[int, str]]) -> str:
    """The bundle's ``pylock.toml`` with each artifact's ``path`` the absolute path of its store entry.

    Only the path strings change, so the hashes stay and uv checks them still. The result is parsed
    again and each artifact must name its own entry; anything else is a ValueError.
    """
    paths = {rel: str(entry(layout, sha256, rel.rpartition("/")[2])) for rel, (_, sha256) in wheels.items()}

    def swap(match: re.Match[str]) -> str:
        value = match.group(2)
        return f"path = {_toml_string(paths[value])}" if value in paths else match.group(0)

    text = re.sub(r"""(?<![\w-])path\s*=\s*(["'])(wheels/[^"'\n]*)\1""", swap, raw.decode("utf-8"))
    for artifact in _artifacts(tomllib.loads(text)):
        if artifact.get("path") not in paths.values():
            raise ValueError(f"{artifact.get('path')!r} could not be pointed at the wheel store")
    return text


def _artifacts(lock: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for package in lock.get("packages", []):
        yield from (package[key] for key in ("archive", "sdist") if key in package)
        yield from package.get("wheels", [])


def _toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, but TOML also wants DEL escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def prune(layout: Layout, keep: Collection[str]) -> None:
    """Remove the entries whose sha256 is not in ``keep`` (what the kept generations were installed from)."""
    directory = root(layout)
    for path in directory.iterdir() if directory.is_dir() else []:
        if path.name not in keep:
            fsutil.remove_tree(path)


def kept_by_uv(
    pylock: bytes, layout: Layout, installed: Mapping[str, str], before: Collection[str]
) -> dict[str, Path]:
    """The distributions a sync of the bundle's ``pylock.toml`` into an existing environment would
    leave as they are although the bundle's wheel for them is another: {name: the store entry to
    reinstall it from}.

    uv keeps an installed distribution of the same name and version whatever wheel it came from
    (astral-sh/uv#4412), so a newer bundle whose member changed without a version bump would keep
    the old files, sealed as the new bundle's. Those are the packages ``installed`` ({canonical name:
    version}, before the sync) at the bundle's version from none of the bundle's wheels for them, by
    ``before``: the store entries (sha256) the environment was installed from, empty when unknown
    (then every such package is reinstalled). Such a package with several wheels is a ValueError:
    which one uv would pick is not known here.
    """
    out: dict[str, Path] = {}
    for package in tomllib.loads(pylock.decode("utf-8")).get("packages", []):
        name, version = canonicalize_name(str(package.get("name"))), str(package.get("version"))
        files = [w for w in package.get("wheels", []) if isinstance(w, dict)]
        if not files or not _same_version(installed.get(name), version):
            continue
        shas = {str(w.get("hashes", {}).get("sha256")) for w in files}
        if shas & set(before):
            continue
        if len(files) > 1:
            raise ValueError(
                f"{name} {version} is installed from another wheel, and the bundle has {len(files)} for it"
            )
        wheel = files[0]
        out[name] = entry(layout, str(wheel["hashes"]["sha256"]), str(wheel["path"]).rpartition("/")[2])
    return out


def _same_version(installed: str | None, locked: str) -> bool:
    if installed is None:
        return False
    try:
        return Version(installed) == Version(locked)
    except InvalidVersion:
        return installed == locked
