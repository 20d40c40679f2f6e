"""The bundle format of docs/bundle.md: its names, limits and error; a bundle checked, then extracted.

Format code only, on paths and file objects: no uv, no network. :func:`read_bundle` is install's
first pass (checks everything; writes only what a :class:`Sink` asks for, see :mod:`unpack`);
:func:`extract` is the second, and checks each file again as it writes it, because the bundle may
have been replaced in between. :mod:`writer` writes bundles to the same rules (:func:`name_problem`,
:func:`clash`, :func:`manifest_files`).

The archive is read by our own ustar loop over :meth:`tarfile.TarInfo.frombuf`, not ``tarfile.open``:
tarfile takes a bad header after the first for the end of the archive, applies pax and GNU extension
headers silently, and in stream mode never checks the gzip CRC. Here each header is checked before
its content is read, and the gzip stream (:mod:`gunzip`) is read to its end, so any damage to the
file is refused.

The manifest's fields and the ``pylock.toml``'s artifacts are checked by :mod:`check`, in
the first pass, so nothing is written for a bundle whose lock names a file outside it.

Wheel names can be longer than ustar's 100 characters (manylinux tags stack up), so a pax header
may give an entry its ``path``, and nothing else: any other pax record, or a GNU header, is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tarfile
import zlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from venvkeeper.bundle import check as bundlecheck
from venvkeeper.bundle.gunzip import Gunzip, StreamError
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.lazy import lazy

if TYPE_CHECKING:
    from venvkeeper.core import signing
else:
    signing = lazy("venvkeeper.core.signing")  # cryptography: only a --public-key check needs it

__all__ = [
    "EXECUTABLE",
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_ENTRIES",
    "MAX_FILE",
    "MAX_TOTAL",
    "MAX_TRAILER",
    "PYLOCK",
    "SBOM",
    "SIGNATURE",
    "SIGNATURE_SIZE",
    "TOP",
    "BundleError",
    "CheckedBundle",
    "Sink",
    "clash",
    "create_under",
    "extract",
    "manifest_files",
    "name_problem",
    "read_bundle",
]

TOP = "venvkeeper-bundle"
FORMAT_VERSION = 1
MAX_FILE = 2 * 1024**3
MAX_TOTAL = 16 * 1024**3
MAX_ENTRIES = 100_000  # a lock of thousands of wheels has thousands of entries
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SIGNATURE_SIZE = 64  # the raw Ed25519 signature of manifest.json
PYLOCK = "pylock.toml"
SBOM = "sbom.cdx.json"  # the bundle's CycloneDX SBOM (venvkeeper.sbom), listed in the manifest like any file
EXECUTABLE = "uv/uv"  # the one entry with mode 0755
# manifest.json and pylock.toml are held in memory to be parsed; thousands of wheels list in under 1 MiB.
_MAX_MANIFEST = 16 * 1024**2
_KEPT = (MANIFEST, SIGNATURE, PYLOCK, SBOM)  # read into memory by the first pass
_BLOCK = tarfile.BLOCKSIZE
# After the last entry: the two zero blocks that end a tar archive, then the zeros that pad it to a
# whole record (tarfile.RECORDSIZE, 20 blocks). tarfile and GNU tar pad so, 2 to 21 blocks in all;
# bsdtar writes the 2 blocks alone into a compressed archive. A larger blocking factor (tar -b) is
# refused: nothing but zeros, and no more than this, may follow the archive's end.
MAX_TRAILER = tarfile.RECORDSIZE + _BLOCK
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
    pylock: bytes = b""  # pylock.toml's bytes, checked against the manifest and by check_pylock
    sbom: bytes | None = (
        None  # sbom.cdx.json's bytes, checked against the manifest; None: the bundle has none
    )


class Sink(Protocol):
    """Where the first pass writes an entry as it reads it, when asked: ``start`` gets the entry's
    name and size and the kept entries read so far (manifest.json, its signature, pylock.toml), and
    returns a file to write its bytes to, or None; ``done`` then gets what the entry hashed to."""

    def start(self, rel: str, size: int, kept: Mapping[str, bytes]) -> BinaryIO | None: ...

    def done(self, rel: str, found: tuple[int, str]) -> None: ...


def read_bundle(path: Path, *, public_key: bytes | None, sink: Sink | None = None) -> CheckedBundle:
    """Install's first pass: check the whole bundle, writing nothing but what ``sink`` asks for.
    Raises BundleError (an OSError only from the sink's files)."""
    label = str(path)
    files: dict[str, tuple[int, str]] = {}
    kept: dict[str, bytes] = {}
    with _open(path) as gz:
        for rel, size, chunks in _members(gz, label):
            out = sink.start(rel, size, kept) if sink is not None else None
            sha, parts = hashlib.sha256(), []
            with out if out is not None else contextlib.nullcontext():
                for chunk in chunks:
                    sha.update(chunk)
                    if rel in _KEPT:  # each checked at its header to be small
                        parts.append(chunk)
                    elif out is not None:
                        out.write(chunk)
            files[rel] = (size, sha.hexdigest())
            kept[rel] = b"".join(parts)
            if out is not None and sink is not None:
                sink.done(rel, files[rel])
    if both := clash(files):
        raise _damaged(f"{label}: {TOP}/{both}")
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
    listed = manifest_files(manifest, label)
    _check_listed(label, files, listed)
    try:
        fields = bundlecheck.check_manifest(manifest, listed)
    except bundlecheck.Malformed as exc:
        raise _damaged(f"{where}: {exc.message}") from None
    _check_kept(label, kept, listed)
    return CheckedBundle(
        manifest=manifest,
        manifest_bytes=raw,
        signed=signed,
        files=files,
        fields=fields,
        pylock=kept[PYLOCK],
        sbom=kept.get(SBOM),
    )


def _check_kept(label: str, kept: Mapping[str, bytes], listed: Mapping[str, tuple[int, str]]) -> None:
    """pylock.toml names only the bundle's own files; sbom.cdx.json, when there, is CycloneDX."""
    if PYLOCK not in listed:
        raise _damaged(f"{label}: has no {TOP}/{PYLOCK}: there is nothing to install")
    try:
        bundlecheck.check_pylock(kept[PYLOCK], listed)
    except bundlecheck.Malformed as exc:
        raise BundleError(
            f"{label}: {TOP}/{PYLOCK}: {exc.message}",
            hint="a bundle installs only its own wheels: pack it again with venvkeeper pack",
        ) from None
    if SBOM in kept:
        try:
            bundlecheck.check_sbom(kept[SBOM])
        except bundlecheck.Malformed as exc:
            raise _damaged(f"{label}: {TOP}/{SBOM}: {exc.message}") from None


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


def extract(path: Path, checked: CheckedBundle, dest: Path, only: Collection[str] | None = None) -> None:
    """Install's second pass: write every entry (or those named in ``only``) under the existing
    directory ``dest``, relative to TOP.

    Each file is hashed as it is written and must be what :func:`read_bundle` found, so a bundle
    replaced in between is refused (BundleError). No link is followed, no file overwritten, and a
    failure writing to ``dest`` is an OSError. After any error ``dest`` holds partial files: the
    caller extracts into a scratch directory and removes it.
    """
    label, seen = str(path), set[str]()
    wanted = set(checked.files if only is None else only)
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with _open(path) as gz:
            for rel, size, chunks in _members(gz, label):
                if rel not in wanted:
                    for _ in chunks:  # read past it: nothing of it is written or used
                        pass
                    continue
                expected = checked.files.get(rel)
                changed = _damaged(f"{label}: {TOP}/{rel}: changed since the bundle was checked")
                if expected is None or expected[0] != size:
                    raise changed
                sha = hashlib.sha256()
                with os.fdopen(create_under(dest_fd, rel), "wb") as out:
                    for chunk in chunks:
                        sha.update(chunk)
                        out.write(chunk)
                if sha.hexdigest() != expected[1]:
                    raise changed
                seen.add(rel)
    finally:
        os.close(dest_fd)
    if missing := wanted - seen:
        raise _damaged(f"{label}: {TOP}/{min(missing)}: is no longer in the bundle")


def create_under(dest_fd: int, rel: str) -> int:
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


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Gunzip]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the bundle ({exc.strerror})") from exc
    with fh:
        yield Gunzip(fh)


def _read(gz: Gunzip, size: int, where: str, *, exact: bool = True) -> bytes:
    """``size`` bytes (with ``exact=False``, up to ``size``: b"" once gzip's end and CRC are checked)."""
    try:
        data = gz.read(size)
    except StreamError as exc:
        raise _damaged(f"{where}: {exc}") from None
    except zlib.error as exc:
        raise _damaged(f"{where}: truncated or corrupt ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{where}: cannot read the bundle ({exc.strerror or exc})") from exc
    if exact and len(data) < size:
        raise _damaged(f"{where}: truncated or corrupt (the archive ends early)")
    return data


def _members(gz: Gunzip, label: str) -> Iterator[tuple[str, int, Iterator[bytes]]]:
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
        if problem := name_problem(info.name):
            raise _damaged(f"{where}: has {problem}")
        if rel in seen:
            raise _damaged(f"{where}: appears twice")
        if len(seen) == MAX_ENTRIES:
            raise _damaged(f"{where}: more than {MAX_ENTRIES} entries")
        if rel == SIGNATURE and info.size != SIGNATURE_SIZE:
            raise _damaged(f"{where}: is {info.size} bytes; an Ed25519 signature is {SIGNATURE_SIZE}")
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


def _entry_header(gz: Gunzip, block: bytes, where: str) -> tarfile.TarInfo:
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
        # A damaged key may hold a newline or other control characters: the error is one line.
        keys = ", ".join(sorted(_shown(k.decode(errors="replace")) for k in records))
        raise _damaged(f"{where}: a pax header with {keys}: only a long path is allowed")
    try:
        return records[b"path"].decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(f"{where}: a pax path that is not UTF-8") from None


def _shown(text: str) -> str:
    return text if text.isprintable() else repr(text)


def _chunks(gz: Gunzip, size: int, where: str) -> Iterator[bytes]:
    while size:
        chunk = _read(gz, min(size, _CHUNK), where)
        size -= len(chunk)
        yield chunk


def name_problem(name: str) -> str | None:
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


def clash(names: Mapping[str, object]) -> str | None:
    """A name that is both a file and another file's directory (it cannot be extracted), or None."""
    dirs = {"/".join(rel.split("/")[:i]) for rel in names for i in range(1, rel.count("/") + 1)}
    both = sorted(dirs & set(names))
    return f"{both[0]}: is both a file and a directory" if both else None


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


def manifest_files(manifest: Any, label: str, *, names: bool = True) -> dict[str, tuple[int, str]]:
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
        if not isinstance(path, str) or (names and (problem := name_problem(f"{TOP}/{path}"))):
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
