"""A bundle written reproducibly: the same files, manifest and time always give the same bytes.

A gzip'd tar (ustar, 0644 entries and uv's 0755, uid and gid 0, no names) sorted by entry name;
the gzip header carries no file name and no time. Wheel names can be longer than ustar's 100
characters (manylinux tags stack up): tarfile then writes a pax header giving the entry its
``path``, and only then, so bundles with short names stay plain ustar (docs/bundle.md).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from venvkeeper.bundle.archive import (
    EXECUTABLE,
    MANIFEST,
    MAX_FILE,
    MAX_TOTAL,
    SIGNATURE,
    SIGNATURE_SIZE,
    TOP,
    BundleError,
    clash,
    manifest_files,
    name_problem,
)

__all__ = ["describe", "manifest_bytes", "write_bundle"]


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The exact bytes of manifest.json: what a signature covers."""
    return (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()


def describe(files: Mapping[str, bytes | Path]) -> list[dict[str, Any]]:
    """The manifest's ``files`` list for these files: path, size and sha256, sorted by path."""
    described = []
    for rel in sorted(files):
        content = files[rel]
        if isinstance(content, bytes):
            size, digest = len(content), hashlib.sha256(content).hexdigest()
        else:
            with content.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        described.append({"path": rel, "size": size, "sha256": digest})
    return described


class _Hashing:
    """Hashes what tarfile copies, so a file changed since :func:`describe` is caught while packing."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.sha, self.count = fh, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha.update(data)
        self.count += len(data)
        return data


def write_bundle(
    out: BinaryIO,
    files: Mapping[str, bytes | Path],
    manifest: Mapping[str, Any],
    *,
    mtime: int,
    signature: bytes | None = None,
) -> None:
    """Write the bundle to ``out``: the same arguments always give the same bytes.

    ``files`` are keyed by path relative to TOP and must be what ``manifest["files"]`` describes
    (:func:`describe`); ``signature`` is over :func:`manifest_bytes` of ``manifest``. Arguments that
    break the format are a ValueError; a file too large, or changed while packed, a BundleError.
    """
    listed = manifest_files(manifest, "the manifest to write", names=False)
    entries = _to_write(files, listed, manifest_bytes(manifest), signature, mtime)
    # filename="" keeps out.name out of the gzip header, mtime=0 the time.
    with (
        gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=out, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for rel in sorted(entries):  # sorted relative to TOP is sorted by entry name
            size, content = entries[rel]
            info = tarfile.TarInfo(f"{TOP}/{rel}")
            info.size, info.mtime, info.mode = size, mtime, 0o755 if rel == EXECUTABLE else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with io.BytesIO(content) if isinstance(content, bytes) else content.open("rb") as fh:
                reader = _Hashing(fh)
                try:
                    tar.addfile(info, reader)
                except OSError as exc:
                    if reader.count == size:  # writing to ``out`` failed: not the file's fault
                        raise
                    raise BundleError(f"{rel}: became shorter while it was packed ({exc})") from exc
            if rel in listed and reader.sha.hexdigest() != listed[rel][1]:
                raise BundleError(f"{rel}: changed while it was packed: its sha256 is not the manifest's")


def _to_write(
    files: Mapping[str, bytes | Path],
    listed: dict[str, tuple[int, str]],
    raw: bytes,
    signature: bytes | None,
    mtime: int,
) -> dict[str, tuple[int, bytes | Path]]:
    """Every entry to write, as {name relative to TOP: (size, content)}, once the arguments are checked."""
    if set(listed) != set(files):
        raise ValueError(f"manifest 'files' and the files differ: {sorted(set(listed) ^ set(files))}")
    bad = [f"{rel}: has {problem}" for rel in files if (problem := name_problem(f"{TOP}/{rel}"))]
    bad += [f"{rel}: is a reserved name" for rel in (MANIFEST, SIGNATURE) if rel in files]
    bad += [both] if (both := clash(files)) else []
    if bad:
        raise ValueError(bad[0])
    if signature is not None and len(signature) != SIGNATURE_SIZE:
        raise ValueError(f"an Ed25519 signature is {SIGNATURE_SIZE} bytes, not {len(signature)}")
    if not 0 <= mtime < 8**11:  # ustar's 11 octal digits
        raise ValueError(f"mtime {mtime} does not fit a ustar header")
    entries: dict[str, tuple[int, bytes | Path]] = {rel: (listed[rel][0], files[rel]) for rel in files}
    entries[MANIFEST] = (len(raw), raw)
    if signature is not None:
        entries[SIGNATURE] = (len(signature), signature)
    for rel, (size, _) in entries.items():
        if size > MAX_FILE:
            raise BundleError(f"{rel}: {size} bytes is over the {MAX_FILE >> 30} GiB limit for a file")
    if sum(size for size, _ in entries.values()) > MAX_TOTAL:
        raise BundleError(f"the files add up to over {MAX_TOTAL >> 30} GiB, the limit for a bundle")
    return entries
