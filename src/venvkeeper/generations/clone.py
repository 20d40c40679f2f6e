"""A new generation as a hard-link clone of the live one: what did not change is linked, not installed.

Every file of the live generation's sealed manifest whose identity still holds (the same inode, size
and mtime, and the same ctime, or failing that the sealed sha256) is hard-linked into the new
generation's directory, its sealed bytecode with it; the deploy then installs only the delta into the
clone. A file whose identity does not hold is never linked (it may have been tampered with): its
distribution is installed afresh, or, for the venv's own files, the clone is refused and the
generation built from nothing.

Generations stay independent: uv never opens an installed file for writing; it removes (RECORD) and
creates, so a reinstall in the clone gives it new inodes and leaves the live generation's bytes as
they are (docs/incremental-generations.md §5, measured with every ``UV_LINK_MODE``). The few files that
name the live generation's directory (console scripts' shebangs, ``bin/activate*``, and the RECORD rows
that hash those scripts) are written afresh with the new directory instead of being linked.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from venvkeeper.core.envscan import sha256_file
from venvkeeper.generations.manifest import Manifest, SealedFile, source_of

__all__ = ["Clone", "CloneRefusedError", "clone"]


class CloneRefusedError(Exception):
    """The live generation cannot be cloned (the caller builds from nothing); the message says why."""


@dataclass
class Clone:
    """What :func:`clone` linked, wrote and refused."""

    linked: dict[str, SealedFile] = field(default_factory=dict)  # identity right after the link
    bytecode: dict[str, SealedFile] = field(default_factory=dict)
    rewritten: list[str] = field(default_factory=list)  # named the live directory: written afresh
    hashed: int = 0  # files linked after their sha256 was checked (the ctime had moved)
    refused: dict[str, str] = field(default_factory=dict)  # path -> why it was not linked
    reinstall: set[str] = field(default_factory=set)  # distributions owning a refused file
    poisoned: set[str] = field(default_factory=set)  # of those, changed in place (uv's cache may share it)

    @property
    def link_ctimes(self) -> dict[str, int]:
        """The source's ctimes right after this clone linked them (path -> ctime): each moved by the
        link itself, checked just before it (update clones one generation twice, :func:`delta.start`)."""
        return {path: f.ctime_ns for path, f in {**self.linked, **self.bytecode}.items()}

    def built(self, source: int, installed: Iterable[str], lock_synced: bool) -> dict[str, Any]:
        """The record's ``built`` for a generation cloned from ``source`` (deploy, update, install)."""
        return {
            "from": "clone",
            "source": source,
            "linked": len(self.linked) + len(self.bytecode),
            "hashed": self.hashed,
            "rewritten": len(self.rewritten),
            "refused": dict(sorted(self.refused.items())),
            "installed": sorted({*installed, *self.reinstall}),
            "lock_synced": lock_synced,
        }

    @property
    def reused(self) -> dict[str, SealedFile]:
        """Every linked file and bytecode file, for the seal (:func:`manifest.seal`'s ``reuse``)."""
        return {**self.linked, **self.bytecode}


def _why_not(st: os.stat_result | None, sealed: SealedFile, dev: int, ctime_ns: int) -> str | None:
    """None when the live file is still what was sealed by identity alone; else why it is not."""
    if st is None:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "no longer a regular file"
    if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != (dev, sealed.ino, sealed.size, sealed.mtime_ns):
        return "changed since it was sealed"
    if st.st_ctime_ns != ctime_ns:
        # Any link or unlink of the inode moves its ctime: uv links its cache into every environment,
        # and removing a generation unlinks shared inodes (those venvkeeper's own removal moved are
        # explained: generations.identity). So a moved ctime costs one hash, never trust.
        return "ctime"
    return None


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


class _Cloner:
    def __init__(
        self, src: Path, manifest: Manifest, dst: Path, explained: Mapping[str, int], named: str
    ) -> None:
        self.src, self.dst, self.manifest = str(src), str(dst), manifest
        self.explained = explained
        self.old, self.new = named.encode(), self.dst.encode()
        # Any spelling of the live generation's directory ends so: ".venv.venvkeeper/generations/0007".
        self.tail = os.path.join(*Path(named).parts[-3:]).encode()
        self.result = Clone()
        self._dirs: set[str] = set()
        self.st: os.stat_result | None = None
        self.why: str | None = None

    def parent(self, rel: str) -> None:
        folder = os.path.dirname(rel)
        if folder and folder not in self._dirs:
            os.makedirs(os.path.join(self.dst, folder), exist_ok=True)
            self._dirs.add(folder)

    def still(self, path: str, sealed: SealedFile) -> bool:
        """Whether the live file is still what was sealed; when not, ``self.why`` says why."""
        full = os.path.join(self.src, path)
        self.st = _lstat(full)
        self.why = _why_not(self.st, sealed, self.manifest.dev, self.explained.get(path, sealed.ctime_ns))
        if self.why == "ctime" and self.st is not None:
            if sha256_file(full, self.st.st_size) == sealed.sha256:
                self.result.hashed += 1
                self.why = None
            else:
                self.why = "changed since it was sealed (same size and mtime, other content)"
        return self.why is None

    def check(self, path: str, sealed: SealedFile) -> os.stat_result | None:
        """The live file's stat when it may be linked; else None, with the refusal recorded."""
        if self.still(path, sealed):
            return self.st
        st = self.st
        self.result.refused[path] = self.why or "?"
        if sealed.owner:
            self.result.reinstall.add(sealed.owner)
            if st is not None and st.st_ino == sealed.ino and st.st_nlink > 1:
                self.result.poisoned.add(sealed.owner)  # written in place: the cache may hold the bytes
        return None

    def link(self, path: str, sealed: SealedFile, into: dict[str, SealedFile]) -> None:
        self.parent(path)
        target = os.path.join(self.dst, path)
        os.link(os.path.join(self.src, path), target)
        after = os.lstat(target)  # the link itself moved the ctime: the seal compares with this one
        into[path] = SealedFile(
            sealed.size,
            sealed.sha256,
            sealed.executable,
            sealed.owner,
            after.st_ino,
            after.st_mtime_ns,
            after.st_ctime_ns,
        )

    def files(self) -> dict[str, bytes]:
        """Link every sealed file that still is what was sealed; write afresh those that name the live
        directory. Returns the rewritten ones' content (their RECORD rows change too)."""
        rewrite: dict[str, bytes] = {}
        for path, sealed in self.manifest.files.items():
            st = self.check(path, sealed)
            if st is None:
                continue
            if _names_directory(path) and self.rewritten(path, sealed, st, rewrite):
                continue
            if not path.endswith("/RECORD"):  # RECORDs last: those listing a rewritten script change too
                self.link(path, sealed, self.result.linked)
        return rewrite

    def rewritten(self, path: str, sealed: SealedFile, st: os.stat_result, rewrite: dict[str, bytes]) -> bool:
        """Whether ``path`` was handled here (written afresh with the new directory, or refused)."""
        content = self.read(path, sealed)
        if content is None:
            return True
        if self.old in content:
            content = rewrite[path] = content.replace(self.old, self.new)
        if self.tail in content:
            # The live generation's directory spelled another way (--env given through another
            # symlink than the record says): a script left naming it would run the old generation.
            raise CloneRefusedError(f"{path}: names {self.src} in a form the clone cannot rewrite")
        if path not in rewrite:
            return False
        self.write(path, rewrite[path], stat.S_IMODE(st.st_mode))
        return True

    def read(self, path: str, sealed: SealedFile) -> bytes | None:
        """The content of a file about to be written afresh: it must still hash as sealed (its identity
        was checked, but its bytes are copied, not linked)."""
        with open(os.path.join(self.src, path), "rb") as fh:
            content = fh.read()
        if hashlib.sha256(content).hexdigest() == sealed.sha256:
            return content
        self.result.refused[path] = "changed since it was sealed (its content)"
        if sealed.owner:
            self.result.reinstall.add(sealed.owner)
        return None

    def write(self, path: str, content: bytes, mode: int) -> None:
        self.parent(path)
        target = os.path.join(self.dst, path)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            os.write(fd, content)
        finally:
            os.close(fd)
        os.chmod(target, mode)  # not narrowed by the umask: the same mode as the live file
        self.result.rewritten.append(path)


def _names_directory(path: str) -> bool:
    """The only files uv writes with the environment's own path in them (measured: §4 of the design)."""
    return path.startswith("bin/") or (path.endswith(".pth") and path.count("/") == 3)


def _record_rows(record: bytes, site: str, changed: Mapping[str, bytes]) -> bytes:
    """A RECORD with the rows of ``changed`` files (environment-relative path -> new content) re-hashed,
    in the format installers write (urlsafe base64 without padding); every other line byte for byte."""
    out = []
    for line in record.decode().splitlines(keepends=True):
        row = next(csv.reader([line]), [])
        path = os.path.normpath(f"{site}/{row[0]}") if row and row[0] else ""
        if path in changed:
            digest = base64.urlsafe_b64encode(hashlib.sha256(changed[path]).digest()).rstrip(b"=").decode()
            ending = line[len(line.rstrip("\r\n")) :]
            written = io.StringIO()  # csv quotes a path with a comma, as installers write it
            csv.writer(written, lineterminator="").writerow([row[0], f"sha256={digest}", len(changed[path])])
            out.append(written.getvalue() + ending)
        else:
            out.append(line)
    return "".join(out).encode()


def clone(
    src: Path,
    manifest: Manifest,
    dst: Path,
    explained: Mapping[str, int] | None = None,
    named: str | None = None,
) -> Clone:
    """Clone the sealed generation ``src`` (``manifest``: its manifest, already checked against its
    record; ``explained``: the ctimes venvkeeper's own unlinks moved since, generations.identity;
    ``named``: the directory its scripts name, as its record says it was built, which is ``src`` spelled
    another way when --env was given through another symlink) into the new directory ``dst``. Raises
    CloneRefusedError when the live generation cannot be cloned at all; ``dst`` is then left for the
    caller to remove."""
    named = named or str(src)
    if manifest.schema < 2 or not manifest.dev:
        raise CloneRefusedError("its manifest predates recorded identities (schema 1)")
    if len(named) != len(str(dst)) or any(c in str(dst) + named for c in "'\"\\\n"):
        # Scripts name the directory inside shell quoting (uv's /bin/sh trampoline for long paths):
        # a same-length, plain path is replaced byte for byte and keeps whatever form uv chose.
        raise CloneRefusedError(f"{dst}: its path cannot replace {named} in the scripts byte for byte")
    cloner = _Cloner(src, manifest, dst, explained or {}, named)
    os.makedirs(dst, exist_ok=True)
    rewrite = cloner.files()
    # The venv's own files come from no distribution uv could install again, and without its RECORD
    # uv cannot remove a distribution to reinstall it: either refuses the clone.
    own = [p for p in cloner.result.refused if not manifest.files[p].owner or p.endswith("/RECORD")]
    if own:
        raise CloneRefusedError(f"{own[0]}: {cloner.result.refused[own[0]]}")
    _records(cloner, rewrite)
    for path, target in manifest.links.items():
        cloner.parent(path)
        os.symlink(target.replace(cloner.old.decode(), cloner.dst), os.path.join(cloner.dst, path))
    # A generation sealed before every module was compiled checked-hash (no cache tag): its bytecode,
    # what its smoke check's imports wrote, is not carried; the new one compiles all of it.
    for path, sealed in manifest.bytecode.items() if manifest.cache_tag else ():
        # Only beside its own source, linked unchanged: bytecode is what runs instead of that source.
        # A refused one is simply not carried (the smoke check compiles the source again); no reinstall.
        if source_of(path) in cloner.result.linked and cloner.still(path, sealed):
            cloner.link(path, sealed, cloner.result.bytecode)
    return cloner.result


def _records(cloner: _Cloner, rewrite: Mapping[str, bytes]) -> None:
    """Link each RECORD that lists no rewritten file; write the others with those rows re-hashed."""
    for path, sealed in cloner.manifest.files.items():
        if not path.endswith("/RECORD") or path in cloner.result.refused:
            continue
        site = path.rsplit("/", 2)[0]
        dist_info = path.rpartition("/")[0]
        listed = {p: c for p, c in rewrite.items() if cloner.manifest.files[p].owner == sealed.owner}
        if not listed or not sealed.owner or not dist_info.endswith(".dist-info"):
            cloner.link(path, sealed, cloner.result.linked)
            continue
        record = cloner.read(path, sealed)
        if record is None:
            raise CloneRefusedError(f"{path}: {cloner.result.refused[path]}")
        content = _record_rows(record, site, listed)
        cloner.write(path, content, stat.S_IMODE(os.lstat(os.path.join(cloner.src, path)).st_mode))
