"""Bundles written by hand, byte by byte, as a broken or hostile packer could write them.

:func:`tar_bytes` lays out ustar entries (the manifest first, then the files sorted) and the two
zero blocks that end an archive, with no record padding; :func:`bundle_bytes` gzips that. The
manifest and the ``pylock.toml`` describe the files truly unless a test says otherwise, so the
check under test is the one that refuses.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import tarfile
from collections.abc import Mapping
from typing import Any

TOP = "venvkeeper-bundle"
BLOCK = tarfile.BLOCKSIZE


def this_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def describe(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    return [
        {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for rel, data in sorted(files.items())
    ]


def manifest_for(files: Mapping[str, bytes], **fields: Any) -> dict[str, Any]:
    """A manifest like pack's, for this interpreter and any platform, describing ``files``."""
    manifest: dict[str, Any] = {
        "format": TOP,
        "format_version": 1,
        "project": {"name": "hostile", "version": "1.0"},
        "target": {"python": this_python(), "implementation": "cp", "platforms": [], "abi3": True},
        "groups": [],
        "members": [],
        "hooks": {"post-deploy": [], "timeout": 900},
        "built_from": {"lock_sha256": "0" * 64, "git_commit": None, "venvkeeper": "0.1.0"},
        "files": describe(files),
    }
    manifest.update(fields)
    return manifest


def manifest_json(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, but TOML wants DEL escaped too, and takes
    no surrogate pair (so non-ASCII stays as it is)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def wheel_entry(name: str, data: bytes, *, path: str | None = None) -> str:
    """A pylock ``wheels`` entry for the bundled file ``wheels/<name>``, or for another ``path``."""
    where = path if path is not None else f"wheels/{name}"
    digest = hashlib.sha256(data).hexdigest()
    return (
        f"{{ name = {toml_string(name)}, path = {toml_string(where)}, size = {len(data)},"
        f" hashes = {{ sha256 = {toml_string(digest)} }} }}"
    )


def pylock(packages: list[str]) -> bytes:
    """A ``pylock.toml`` of these ``[[packages]]`` bodies (each the lines after the header)."""
    lines = ['lock-version = "1.0"', 'created-by = "venvkeeper-tests"']
    if not packages:
        lines.append("packages = []")
    for body in packages:
        lines += ["", "[[packages]]", body]
    return ("\n".join(lines) + "\n").encode()


def package(name: str, version: str, **artifacts: str) -> str:
    """A package's lines, then ``key = value`` for each artifact (wheels, sdist, archive, vcs, directory)."""
    lines = [f"name = {toml_string(name)}", f"version = {toml_string(version)}"]
    lines += [f"{key} = {value}" for key, value in artifacts.items()]
    return "\n".join(lines)


def header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(f"{TOP}/{name}")
    info.size, info.mode = size, 0o755 if name == "uv/uv" else 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")  # a pax path for a long name only


def tar_bytes(files: Mapping[str, bytes], manifest: bytes) -> bytes:
    """The archive: manifest.json, the files sorted, then the two zero blocks that end it."""
    out = bytearray()
    for rel, data in [("manifest.json", manifest), *sorted(files.items())]:
        out += header(rel, len(data)) + data + b"\0" * (-len(data) % BLOCK)
    return bytes(out + b"\0" * 2 * BLOCK)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def bundle_bytes(
    files: Mapping[str, bytes], manifest: Mapping[str, Any] | bytes | None = None, *, tail: bytes = b""
) -> bytes:
    """A gzipped bundle of ``files`` (its manifest describing them unless given), ``tail`` after the
    archive's two end blocks."""
    if manifest is None:
        manifest = manifest_for(files)
    raw = manifest if isinstance(manifest, bytes) else manifest_json(manifest)
    return gz(tar_bytes(files, raw) + tail)
