"""The bundle format of docs/bundle.md: write one reproducibly, check one, extract one.

Format code only, on paths and file objects: no uv, no network. :func:`read_bundle` is install's
first pass (checks everything, writes nothing); :func:`extract` is the second, and checks each file
again as it writes it, because the bundle may have been replaced in between.

The archive is read by our own ustar loop over :meth:`tarfile.TarInfo.frombuf`, not ``tarfile.open``:
tarfile takes a bad header after the first for the end of the archive, applies pax and GNU extension
headers silently, and in stream mode never checks the gzip CRC. Here each header is checked before
its content is read, and the gzip stream is read to its end, so any damage to the file is refused.

Wheel names can be longer than ustar's 100 characters (manylinux tags stack up), so a pax header
may give an entry its ``path``, and nothing else: any other pax record, or a GNU header, is refused.
tarfile writes a pax header only for such a name, so bundles with short names stay plain ustar.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from venvkeeper import signing
from venvkeeper.errors import VenvkeeperError
from venvkeeper.exitcodes import ExitCode

__all__ = [
    "EXECUTABLE",
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_FILE",
    "MAX_TOTAL",
    "SIGNATURE",
    "TOP",
    "BundleError",
    "CheckedBundle",
    "describe",
    "extract",
    "manifest_bytes",
    "read_bundle",
    "write_bundle",
]

TOP = "venvkeeper-bundle"
FORMAT_VERSION = 1
MAX_FILE = 2 * 1024**3
MAX_TOTAL = 16 * 1024**3
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
EXECUTABLE = "uv/uv"  # the one entry with mode 0755
# manifest.json is held in memory to be verified and parsed; thousands of wheels list in under 1 MiB.
_MAX_MANIFEST = 16 * 1024**2
_BLOCK = tarfile.BLOCKSIZE
_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.DIRTYPE: "a directory",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}
_DAMAGED = "The bundle was damaged or altered after it was packed: get a fresh copy, or pack it again."


class BundleError(VenvkeeperError):
    """A bundle that install refuses, or that cannot be packed; the message names the entry."""

    code = "bundle"
    exit_code = ExitCode.BAD_INPUT


def _damaged(message: str) -> BundleError:
    return BundleError(message, hint=_DAMAGED)


@dataclass(frozen=True)
class CheckedBundle:
    """What the first pass found: the manifest, and every entry (relative to TOP) as (size, sha256)."""

    manifest: dict[str, Any]
    manifest_bytes: bytes
    signed: bool  # True only when a public key was given and the signature verified with it
    files: dict[str, tuple[int, str]]  # manifest.json and manifest.json.sig included


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
    listed = _manifest_files(manifest, "the manifest to write")
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
    bad = [f"{rel}: has {problem}" for rel in files if (problem := _name_problem(f"{TOP}/{rel}"))]
    bad += [f"{rel}: is a reserved name" for rel in (MANIFEST, SIGNATURE) if rel in files]
    bad += [clash] if (clash := _clash(files)) else []
    if bad:
        raise ValueError(bad[0])
    if signature is not None and len(signature) != signing.SIGNATURE_SIZE:
        raise ValueError(f"an Ed25519 signature is {signing.SIGNATURE_SIZE} bytes, not {len(signature)}")
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


def read_bundle(path: Path, *, public_key: bytes | None) -> CheckedBundle:
    """Install's first pass: check the whole bundle, extracting nothing. Raises BundleError."""
    label = str(path)
    files: dict[str, tuple[int, str]] = {}
    kept: dict[str, bytes] = {}
    with _open(path) as gz:
        for rel, size, chunks in _members(gz, label):
            sha, parts = hashlib.sha256(), []
            for chunk in chunks:
                sha.update(chunk)
                if rel in (MANIFEST, SIGNATURE):  # both checked at their header to be small
                    parts.append(chunk)
            files[rel] = (size, sha.hexdigest())
            kept[rel] = b"".join(parts)
    if clash := _clash(files):
        raise _damaged(f"{label}: {TOP}/{clash}")
    if MANIFEST not in files:
        raise BundleError(f"{label}: has no {TOP}/{MANIFEST}: this is not a venvkeeper bundle")
    raw = kept[MANIFEST]
    # The signature first: with a key, nothing in an unverified manifest is worth reporting.
    signed = _check_signature(label, raw, kept.get(SIGNATURE), public_key)
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(f"{label}: {TOP}/{MANIFEST}: is not valid JSON ({exc})") from exc
    listed = _manifest_files(manifest, label)
    content = {rel: found for rel, found in files.items() if rel not in (MANIFEST, SIGNATURE)}
    for names, problem in (
        (set(content) - set(listed), "is in the bundle but not in its manifest"),
        (set(listed) - set(content), "is in the manifest but missing from the bundle"),
    ):
        if names:
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            raise _damaged(f"{label}: {TOP}/{min(names)}: {problem}{more}")
    for rel in sorted(listed):
        for field, found, expected in zip(("size", "sha256"), content[rel], listed[rel], strict=True):
            if found != expected:
                raise _damaged(f"{label}: {TOP}/{rel}: {field} {found} is not the manifest's {expected}")
    return CheckedBundle(manifest=manifest, manifest_bytes=raw, signed=signed, files=files)


def extract(path: Path, checked: CheckedBundle, dest: Path) -> None:
    """Install's second pass: write every entry under the existing directory ``dest``, relative to TOP.

    Each file is hashed as it is written and must be what :func:`read_bundle` found, so a bundle
    replaced in between is refused (BundleError). No link is followed, no file overwritten, and a
    failure writing to ``dest`` is an OSError. After any error ``dest`` holds partial files: the
    caller extracts into a scratch directory and removes it.
    """
    label, seen = str(path), set[str]()
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with _open(path) as gz:
            for rel, size, chunks in _members(gz, label):
                expected = checked.files.get(rel)
                changed = _damaged(f"{label}: {TOP}/{rel}: changed since the bundle was checked")
                if expected is None or expected[0] != size:
                    raise changed
                sha = hashlib.sha256()
                with os.fdopen(_create(dest_fd, rel), "wb") as out:
                    for chunk in chunks:
                        sha.update(chunk)
                        out.write(chunk)
                if sha.hexdigest() != expected[1]:
                    raise changed
                seen.add(rel)
    finally:
        os.close(dest_fd)
    if missing := set(checked.files) - seen:
        raise _damaged(f"{label}: {TOP}/{min(missing)}: is no longer in the bundle")


def _create(dest_fd: int, rel: str) -> int:
    """A new file ``rel`` under ``dest_fd``, making directories as needed, never following a link."""
    *dirs, name = rel.split("/")
    opened: list[int] = []
    try:
        for part in dirs:
            parent = opened[-1] if opened else dest_fd
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=parent)
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            opened.append(os.open(part, flags, dir_fd=parent))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=opened[-1] if opened else dest_fd)
        os.fchmod(fd, 0o755 if rel == EXECUTABLE else 0o644)  # exactly, whatever the umask
        return fd
    finally:
        for fd in opened:
            os.close(fd)


def _open(path: Path) -> gzip.GzipFile:
    try:
        return gzip.open(path, "rb")
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the bundle ({exc.strerror})") from exc


def _read(gz: gzip.GzipFile, size: int, where: str, *, exact: bool = True) -> bytes:
    """``size`` bytes (with ``exact=False``, up to ``size``: b"" once gzip's end and CRC are checked)."""
    try:
        data = gz.read(size)  # GzipFile reads are buffered: short only at the end of the stream
    except (EOFError, zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
        raise _damaged(f"{where}: truncated or corrupt ({exc})") from exc
    if exact and len(data) < size:
        raise _damaged(f"{where}: truncated or corrupt (the archive ends early)")
    return data


def _members(gz: gzip.GzipFile, label: str) -> Iterator[tuple[str, int, Iterator[bytes]]]:
    """Each entry as (name relative to TOP, size, its content in chunks), after its header is checked."""
    seen: set[str] = set()
    total, where = 0, f"{label}: the first entry"
    while (block := _read(gz, _BLOCK, where)).strip(b"\0"):
        info = _entry_header(gz, block, where)
        name = info.name if info.name.isprintable() else repr(info.name)
        rel, where = info.name[len(TOP) + 1 :], f"{label}: {name}"
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            kind = _KINDS.get(info.type, f"a tar entry of type {info.type.decode(errors='replace')!r}")
            target = f" to {info.linkname!r}" if info.issym() or info.islnk() else ""
            raise _damaged(f"{where}: is {kind}{target}, not a regular file")
        if problem := _name_problem(info.name):
            raise _damaged(f"{where}: has {problem}")
        if rel in seen:
            raise _damaged(f"{where}: appears twice")
        if rel == SIGNATURE and info.size != signing.SIGNATURE_SIZE:
            raise _damaged(f"{where}: is {info.size} bytes; an Ed25519 signature is {signing.SIGNATURE_SIZE}")
        limit = _MAX_MANIFEST if rel == MANIFEST else MAX_FILE
        if not 0 <= info.size <= limit:
            raise _damaged(f"{where}: its size, {info.size} bytes, is not between 0 and the limit {limit}")
        seen.add(rel)
        total += info.size
        if total > MAX_TOTAL:
            raise _damaged(f"{where}: the files add up to over {MAX_TOTAL >> 30} GiB")
        chunks = _chunks(gz, info.size, where)
        yield rel, info.size, chunks
        for _ in chunks:  # a consumer that stopped early must not leave the stream mid-file
            pass
        _read(gz, -info.size % _BLOCK, where)
        where = f"{label}: the entry after {name}"
    # The end of the archive: the rest must be zeros, read to gzip's end so its CRC is checked.
    while chunk := _read(gz, _CHUNK, where, exact=False):
        if chunk.strip(b"\0"):
            raise _damaged(f"{label}: data after the end of the archive")


_MAX_PAX = 4096


def _header(block: bytes, where: str) -> tarfile.TarInfo:
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except (tarfile.HeaderError, UnicodeDecodeError) as exc:
        raise _damaged(f"{where}: corrupt tar header ({exc})") from exc


def _entry_header(gz: gzip.GzipFile, block: bytes, where: str) -> tarfile.TarInfo:
    """The entry's header; a pax header before it (a long name) gives it its path."""
    info = _header(block, where)
    if info.type != tarfile.XHDTYPE:
        return info
    if not 0 < info.size <= _MAX_PAX:
        raise _damaged(f"{where}: a pax header of {info.size} bytes")
    path = _pax_path(_read(gz, info.size, where), where)
    _read(gz, -info.size % _BLOCK, where)
    info = _header(_read(gz, _BLOCK, where), where)
    if info.type == tarfile.XHDTYPE:
        raise _damaged(f"{where}: two pax headers in a row")
    info.name = path
    return info


def _pax_path(data: bytes, where: str) -> str:
    """The one ``path`` record of a pax header ("LEN path=VALUE\n"); any other record is refused."""
    records: dict[bytes, bytes] = {}
    while data:
        length, _, rest = data.partition(b" ")
        if (
            not length.isdigit()
            or not 0 < int(length) <= len(data)
            or data[int(length) - 1 : int(length)] != b"\n"
        ):
            raise _damaged(f"{where}: a corrupt pax header")
        key, eq, value = rest[: int(length) - len(length) - 2].partition(b"=")
        if not eq or key in records:
            raise _damaged(f"{where}: a corrupt pax header")
        records[key] = value
        data = data[int(length) :]
    if set(records) != {b"path"}:
        keys = ", ".join(sorted(k.decode(errors="replace") for k in records))
        raise _damaged(f"{where}: a pax header with {keys}: only a long path is allowed")
    try:
        return records[b"path"].decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(f"{where}: a pax path that is not UTF-8") from None


def _chunks(gz: gzip.GzipFile, size: int, where: str) -> Iterator[bytes]:
    while size:
        chunk = _read(gz, min(size, _CHUNK), where)
        size -= len(chunk)
        yield chunk


def _name_problem(name: str) -> str | None:
    """Why an entry's name is refused, or None."""
    parts = name.split("/")
    if not name.isprintable():
        return "control characters in its name"
    if name.startswith("/"):
        return "an absolute name"
    if ".." in parts:
        return "'..' in its name"
    if parts[0] != TOP or len(parts) < 2:
        return f"a name outside {TOP}/"
    if any(part in ("", ".") for part in parts[1:]):
        return "an empty or '.' part in its name"
    return None


def _clash(names: Mapping[str, object]) -> str | None:
    """A name that is both a file and another file's directory (it cannot be extracted), or None."""
    dirs = {"/".join(rel.split("/")[:i]) for rel in names for i in range(1, rel.count("/") + 1)}
    clash = sorted(dirs & set(names))
    return f"{clash[0]}: is both a file and a directory" if clash else None


def _check_signature(label: str, raw: bytes, signature: bytes | None, public_key: bytes | None) -> bool:
    """Whether the manifest is signed and verified; refuses per the rules of docs/bundle.md."""
    sig = f"{TOP}/{SIGNATURE}"
    if public_key is None and signature is not None:
        hint = "Install a signed bundle with the public key of the pair that signed it."
        raise BundleError(f"{label}: is signed ({sig}): pass --public-key to check its signature", hint=hint)
    if public_key is not None and signature is None:
        hint = "Pack it again with --sign, or install it without --public-key if you trust its source."
        raise BundleError(f"{label}: is not signed (no {sig}), but --public-key was given", hint=hint)
    if public_key is not None and signature is not None and not signing.verify(public_key, raw, signature):
        hint = "The manifest was altered after it was signed, or signed with another key."
        raise BundleError(f"{label}: {sig}: the signature does not verify with the public key", hint=hint)
    return signature is not None


def _manifest_files(manifest: Any, label: str) -> dict[str, tuple[int, str]]:
    """The manifest's ``files`` as {path: (size, sha256)}, after its format and version are checked."""
    where = f"{label}: {TOP}/{MANIFEST}"
    if not isinstance(manifest, Mapping):
        raise _damaged(f"{where}: is not a JSON object")
    if manifest.get("format") != TOP:
        raise _damaged(f"{where}: format is {manifest.get('format')!r}, not {TOP!r}")
    if type(version := manifest.get("format_version")) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        raise BundleError(
            f"{where}: format_version {version!r} is not {FORMAT_VERSION}, the one this venvkeeper reads",
            hint="Upgrade venvkeeper to install it." if newer else _DAMAGED,
        )
    if not isinstance(entries := manifest.get("files"), list):
        raise _damaged(f'{where}: has no "files" list')
    listed: dict[str, tuple[int, str]] = {}
    for entry in entries:
        ok = isinstance(entry, dict) and isinstance(entry.get("path"), str) and type(entry.get("size")) is int
        if not ok or not _SHA256.fullmatch(str(entry.get("sha256"))) or entry["path"] in listed:
            raise _damaged(f'{where}: a bad or repeated "files" entry: {json.dumps(entry)[:100]}')
        listed[entry["path"]] = (entry["size"], entry["sha256"])
    return listed
