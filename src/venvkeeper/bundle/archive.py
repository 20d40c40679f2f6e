"""The bundle format of docs/bundle.md: write one reproducibly, check one, extract one.

Format code only, on paths and file objects: no uv, no network. :func:`read_bundle` is install's
first pass (checks everything, writes nothing); :func:`extract` is the second, and checks each file
again as it writes it, because the bundle may have been replaced in between.

The archive is read by our own ustar loop over :meth:`tarfile.TarInfo.frombuf`, not ``tarfile.open``:
tarfile takes a bad header after the first for the end of the archive, applies pax and GNU extension
headers silently, and in stream mode never checks the gzip CRC. Here each header is checked before
its content is read, and the gzip stream is read to its end, so any damage to the file is refused.
The gzip layer is zlib's own (:class:`_Gunzip`), not :class:`gzip.GzipFile`, which skips any amount
of zero bytes after the stream, one ``read(1)`` at a time: what may follow the archive's end is
bounded here (docs/bundle.md, "Limits").

The manifest's fields and the ``pylock.toml``'s artifacts are checked by :mod:`bundlecheck`, in
the first pass, so nothing is written for a bundle whose lock names a file outside it.

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

from venvkeeper.bundle import check as bundlecheck
from venvkeeper.bundle import signing
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.exitcodes import ExitCode

__all__ = [
    "EXECUTABLE",
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_ENTRIES",
    "MAX_FILE",
    "MAX_TOTAL",
    "MAX_TRAILER",
    "PYLOCK",
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
MAX_ENTRIES = 100_000  # a lock of thousands of wheels has thousands of entries
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
PYLOCK = "pylock.toml"
EXECUTABLE = "uv/uv"  # the one entry with mode 0755
# manifest.json and pylock.toml are held in memory to be parsed; thousands of wheels list in under 1 MiB.
_MAX_MANIFEST = 16 * 1024**2
_KEPT = (MANIFEST, SIGNATURE, PYLOCK)  # read into memory by the first pass
_BLOCK = tarfile.BLOCKSIZE
# After the last entry: the two zero blocks that end a tar archive, then the zeros that pad it to a
# whole record (tarfile.RECORDSIZE, 20 blocks). tarfile and GNU tar pad so, 2 to 21 blocks in all;
# bsdtar writes the 2 blocks alone into a compressed archive. A larger blocking factor (tar -b) is
# refused: nothing but zeros, and no more than this, may follow the archive's end.
MAX_TRAILER = tarfile.RECORDSIZE + _BLOCK
# Bytes of the file after the archive's end: the compressed trailer, the gzip trailers of its
# members and, as gzip(1) and Python's gzip allow, zero bytes after the last member.
_MAX_RAW_TAIL = 64 * 1024
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
    fields: bundlecheck.ManifestFields  # the manifest's fields install acts on, checked


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
    listed = _manifest_files(manifest, "the manifest to write", names=False)
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
                if rel in _KEPT:  # each checked at its header to be small
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
    where = f"{label}: {TOP}/{MANIFEST}"
    try:
        manifest = bundlecheck.parse_json(raw)
    except bundlecheck.Malformed as exc:
        raise _damaged(f"{where}: {exc.message}") from None
    listed = _manifest_files(manifest, label)
    _check_listed(label, files, listed)
    try:
        fields = bundlecheck.check_manifest(manifest, listed)
    except bundlecheck.Malformed as exc:
        raise _damaged(f"{where}: {exc.message}") from None
    if PYLOCK not in listed:
        raise _damaged(f"{label}: has no {TOP}/{PYLOCK}: there is nothing to install")
    try:
        bundlecheck.check_pylock(kept[PYLOCK], listed)
    except bundlecheck.Malformed as exc:
        raise BundleError(
            f"{label}: {TOP}/{PYLOCK}: {exc.message}",
            hint="a bundle installs only its own wheels: pack it again with venvkeeper pack",
        ) from None
    return CheckedBundle(manifest=manifest, manifest_bytes=raw, signed=signed, files=files, fields=fields)


def _check_listed(
    label: str, files: Mapping[str, tuple[int, str]], listed: Mapping[str, tuple[int, str]]
) -> None:
    """The bundle's files are exactly the manifest's, with its sizes and sha256."""
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


class _StreamError(Exception):
    """The gzip stream is damaged, or more follows it than may: the message says which."""


class _Gunzip:
    """A gzip file's content, member after member, decompressed by zlib, which checks each
    member's header, CRC-32 and length (wbits 31: a gzip wrapper).

    Zero bytes may follow the last member (gzip(1) and Python's gzip accept such padding);
    once :meth:`limit_tail` is called at the archive's end, at most ``_MAX_RAW_TAIL`` more bytes
    of the file may be read, whatever they decompress to.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._z = zlib.decompressobj(wbits=31)
        self._input = b""  # read from the file, not yet given to zlib
        self._raw = 0  # bytes read from the file
        self._limit: int | None = None
        self._end = False
        self._started = False

    def _consumed(self) -> int:
        return self._raw - len(self._input) - len(self._z.unconsumed_tail) - len(self._z.unused_data)

    def _check_limit(self) -> None:
        if self._limit is not None and self._consumed() > self._limit:
            raise _StreamError(f"more than {_MAX_RAW_TAIL} bytes of the file after the end of the archive")

    def _take(self) -> bytes:
        if self._input:
            data, self._input = self._input, b""
            return data
        data = self._fh.read(_CHUNK)
        self._raw += len(data)
        return data

    def limit_tail(self) -> None:
        """From here on, at most ``_MAX_RAW_TAIL`` bytes of the file may be read."""
        self._limit = self._consumed() + _MAX_RAW_TAIL

    def read(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of the last member."""
        if not self._started:
            self._started = True
            self._input = self._take()
            if self._input[:2] != b"\x1f\x8b":
                raise _StreamError("not a gzip file (a bundle is the .tar.gz venvkeeper pack writes)")
        out = bytearray()
        while len(out) < size and not self._end:
            if self._z.eof:
                self._next_member()
                continue
            data = self._z.unconsumed_tail or self._take()
            if not data:
                raise _StreamError("truncated or corrupt (the gzip stream ends early)")
            out += self._z.decompress(data, size - len(out))
            self._check_limit()
        return bytes(out)

    def _next_member(self) -> None:
        """After a member: another member, zero padding to the end of the file, or the end."""
        self._input = self._z.unused_data + self._input
        self._z = zlib.decompressobj(wbits=31)
        data = self._take()
        if data[:1] not in (b"", b"\0"):  # another member (zlib checks its header)
            self._input = data
            return
        padding = 0
        while data:
            padding += len(data)
            if data.strip(b"\0"):
                raise _StreamError("data after the end of the gzip stream")
            if padding > _MAX_RAW_TAIL:
                raise _StreamError(f"more than {_MAX_RAW_TAIL} zero bytes after the end of the gzip stream")
            data = self._take()
        self._check_limit()
        self._end = True


@contextlib.contextmanager
def _open(path: Path) -> Iterator[_Gunzip]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the bundle ({exc.strerror})") from exc
    with fh:
        yield _Gunzip(fh)


def _read(gz: _Gunzip, size: int, where: str, *, exact: bool = True) -> bytes:
    """``size`` bytes (with ``exact=False``, up to ``size``: b"" once gzip's end and CRC are checked)."""
    try:
        data = gz.read(size)
    except _StreamError as exc:
        raise _damaged(f"{where}: {exc}") from None
    except zlib.error as exc:
        raise _damaged(f"{where}: truncated or corrupt ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{where}: cannot read the bundle ({exc.strerror or exc})") from exc
    if exact and len(data) < size:
        raise _damaged(f"{where}: truncated or corrupt (the archive ends early)")
    return data


def _members(gz: _Gunzip, label: str) -> Iterator[tuple[str, int, Iterator[bytes]]]:
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
        if len(seen) == MAX_ENTRIES:
            raise _damaged(f"{where}: more than {MAX_ENTRIES} entries")
        if rel == SIGNATURE and info.size != signing.SIGNATURE_SIZE:
            raise _damaged(f"{where}: is {info.size} bytes; an Ed25519 signature is {signing.SIGNATURE_SIZE}")
        limit = _MAX_MANIFEST if rel in _KEPT else MAX_FILE
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
    # The end of the archive: zeros, at most MAX_TRAILER of them, read to gzip's end so its CRC
    # is checked.
    gz.limit_tail()
    zeros = len(block)
    while chunk := _read(gz, MAX_TRAILER + 1 - zeros, label, exact=False):
        if chunk.strip(b"\0"):
            raise _damaged(f"{label}: data after the end of the archive")
        zeros += len(chunk)
        if zeros > MAX_TRAILER:
            raise _damaged(
                f"{label}: more than {MAX_TRAILER} zero bytes after the end of the archive"
                f" (tar pads it with at most {MAX_TRAILER // _BLOCK} blocks)"
            )


_MAX_PAX = 4096


def _header(block: bytes, where: str) -> tarfile.TarInfo:
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except (tarfile.HeaderError, UnicodeDecodeError) as exc:
        raise _damaged(f"{where}: corrupt tar header ({exc})") from exc


def _entry_header(gz: _Gunzip, block: bytes, where: str) -> tarfile.TarInfo:
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


def _chunks(gz: _Gunzip, size: int, where: str) -> Iterator[bytes]:
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


def _manifest_files(manifest: Any, label: str, *, names: bool = True) -> dict[str, tuple[int, str]]:
    """The manifest's ``files`` as {path: (size, sha256)}, after its format and version are checked
    (and, with ``names``, each path; write_bundle checks the names of the files it is given)."""
    where = f"{label}: {TOP}/{MANIFEST}"
    show = bundlecheck.show
    if not isinstance(manifest, Mapping):
        raise _damaged(f"{where}: is {show(manifest)}, not a JSON object")
    if manifest.get("format") != TOP:
        raise _damaged(f"{where}: format is {show(manifest.get('format'))}, not {TOP!r}")
    if type(version := manifest.get("format_version")) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        raise BundleError(
            f"{where}: format_version is {show(version)}, not {FORMAT_VERSION},"
            " the one this venvkeeper reads",
            hint="Upgrade venvkeeper to install it." if newer else _DAMAGED,
        )
    if not isinstance(entries := manifest.get("files"), list):
        raise _damaged(f"{where}: files is {show(entries)}, not a list")
    listed: dict[str, tuple[int, str]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _damaged(f"{where}: files[{i}]: is {show(entry)}, not an object")
        path, size, digest = entry.get("path"), entry.get("size"), entry.get("sha256")
        problem = None
        if not isinstance(path, str) or (names and (problem := _name_problem(f"{TOP}/{path}"))):
            raise _damaged(
                f"{where}: files[{i}].path: is {show(path)}" + (f", with {problem}" if problem else "")
            )
        if path in listed or (names and path in (MANIFEST, SIGNATURE)):
            raise _damaged(f"{where}: files[{i}].path: {path!r} is listed twice, or is a reserved name")
        if type(size) is not int or not 0 <= size <= MAX_FILE:
            raise _damaged(f"{where}: files[{i}].size: is {show(size)}, not a size up to {MAX_FILE}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise _damaged(f"{where}: files[{i}].sha256: is {show(digest)}, not a sha256 in hex")
        listed[path] = (size, digest)
    return listed
