"""Reading an installed environment: its files, their hashes, and its distributions' metadata.

Read-only, and quick: one ``scandir`` walk, then hashing spread over threads (hashlib releases the
GIL on large buffers, so the cores are used). Files Python writes while running
(``__pycache__/*.pyc``) are not part of what an environment *is* and are never read.
"""

from __future__ import annotations

import binascii
import csv
import hashlib  # not lazy(): the hashing loop reads it once per file, and each read through lazy costs ~1 µs
import json
import os
import stat

from venvkeeper.core.lazy import lazy
from venvkeeper.core.names import canonicalize_name

TYPE_CHECKING = False  # typing itself is not imported: verify's start-up time is measured
if TYPE_CHECKING:
    import threading
    from collections.abc import Iterable, Mapping
    from typing import Any
else:
    threading = lazy("threading")  # the hashing helpers: ``verify --fast`` hashes nothing

__all__ = [
    "Distribution",
    "FileStat",
    "Hashing",
    "b64_to_hex",
    "classify_direct_url",
    "distributions_in",
    "hash_files",
    "read_distributions",
    "sha256_file",
    "site_packages",
    "walk",
]

_SMALL = 1 << 20  # read whole; above this, stream in chunks


class FileStat:
    """One entry under the environment: a regular file, or a symlink (never followed).

    A plain class, as everything on verify's path: dataclasses alone would cost a quarter of the
    100 ms verify may take on a 900-file environment.
    """

    __slots__ = ("ctime_ns", "dev", "executable", "ino", "link", "mtime_ns", "nlink", "size")

    def __init__(
        self,
        link: str | None,
        size: int,
        executable: bool,
        dev: int,
        ino: int,
        nlink: int,
        mtime_ns: int = 0,
        ctime_ns: int = 0,
    ) -> None:
        self.link = link  # the symlink's target, or None for a regular file
        self.size = size
        self.executable = executable
        self.dev = dev
        self.ino = ino
        self.nlink = nlink
        # The identity a later clone compares (generations.clone): a write changes mtime, and a
        # write that puts the mtime back (os.utime) still changes ctime.
        self.mtime_ns = mtime_ns
        self.ctime_ns = ctime_ns


def walk(
    root: str, *, bytecode: bool = False, pycache: dict[str, FileStat] | None = None
) -> dict[str, FileStat]:
    """Every regular file and symlink under ``root`` by relative path ('/'-separated).

    ``__pycache__`` directories are skipped: CPython writes them at run time. ``bytecode``: only the
    files inside them (the bytecode a deploy compiled and seals,
    :func:`venvkeeper.generations.manifest.seal_bytecode`). ``pycache``: filled with the regular files
    inside them in the same walk (verify: the sealed bytecode, and any planted beside it).
    """
    found: dict[str, FileStat] = {}
    stack = [(root, "", False)]
    while stack:
        top, rel, cached = stack.pop()
        try:
            entries = os.scandir(top)
        except OSError:
            continue
        with entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__" or bytecode:
                        stack.append((entry.path, path, bytecode and entry.name == "__pycache__"))
                    elif pycache is not None:
                        _cached(entry.path, path, pycache)
                    continue
                if bytecode and not cached:
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    found[path] = FileStat(
                        os.readlink(entry.path), 0, False, st.st_dev, st.st_ino, st.st_nlink
                    )
                elif stat.S_ISREG(st.st_mode):
                    found[path] = _regular(st)
    return found


def _regular(st: os.stat_result) -> FileStat:
    return FileStat(
        None,
        st.st_size,
        bool(st.st_mode & 0o111),
        st.st_dev,
        st.st_ino,
        st.st_nlink,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def _cached(top: str, rel: str, into: dict[str, FileStat]) -> None:
    """The files and symlinks directly inside the ``__pycache__`` ``top`` (CPython looks no deeper, and
    follows a symlink)."""
    try:
        entries = os.scandir(top)
    except OSError:
        return
    with entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # CPython's temporary file, renamed over its .pyc since the listing
            if stat.S_ISREG(st.st_mode):
                into[f"{rel}/{entry.name}"] = _regular(st)
            elif stat.S_ISLNK(st.st_mode):
                into[f"{rel}/{entry.name}"] = FileStat(
                    os.readlink(entry.path), 0, False, st.st_dev, st.st_ino, st.st_nlink
                )


def sha256_file(path: str, size: int) -> str:
    """sha256 (hex) of a file whose size (from a stat) is ``size``; a size that is off only costs a read."""
    # os.open/os.read rather than open(): no buffered file object per file, a third faster on
    # environments of many small files. ``size`` (from the walk) sizes the first read.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        h = hashlib.sha256(os.read(fd, min(size, _SMALL) + 1))
        while chunk := os.read(fd, _SMALL):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


def _hash_batch(root: str, files: Mapping[str, FileStat], paths: list[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for path in paths:
        try:
            out.append((path, sha256_file(f"{root}/{path}", files[path].size)))
        except OSError:
            out.append((path, None))  # vanished or unreadable: reported by the caller as such
    return out


class Hashing:
    """sha256 (hex) of every regular file in ``files``, using the cores; ``result()`` collects.

    hashlib releases the GIL while it hashes a large buffer, but opening and reading a small file
    is Python work that holds it, and threads contending for it over many small files are slower
    than one. So helper threads start at once on the largest files (their share of the bytes, dealt
    out largest first to the least loaded), while the caller goes on with other reading; the small
    files are hashed by the caller in ``result()``.
    """

    def __init__(self, root: str, files: Mapping[str, FileStat], workers: int | None = None) -> None:
        self.root = root
        self._files = files
        regular = sorted((p for p, s in files.items() if s.link is None), key=lambda p: -files[p].size)
        workers = max(1, min(workers or os.cpu_count() or 1, len(regular)))
        total = sum(files[p].size for p in regular)
        helpers = workers - 1 if total >= (4 << 20) else 0
        batches: list[list[str]] = [[] for _ in range(helpers)]
        load = [0] * helpers
        share, taken = total * helpers // workers, 0
        for path in regular:
            if taken >= share or not helpers:
                break
            i = load.index(min(load))
            batches[i].append(path)
            load[i] += files[path].size
            taken += files[path].size
        self._mine = regular[sum(map(len, batches)) :]
        self._parts: list[list[tuple[str, str | None]]] = [[] for _ in range(helpers)]
        self._threads = []
        if helpers:
            for i in range(helpers):
                thread = threading.Thread(target=self._work, args=(i, batches[i]), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self, i: int, batch: list[str]) -> None:
        self._parts[i] = _hash_batch(self.root, self._files, batch)

    def result(self) -> dict[str, str | None]:
        result = dict(_hash_batch(self.root, self._files, self._mine))
        for thread in self._threads:
            thread.join()
        for part in self._parts:
            result.update(part)
        return result


def hash_files(root: str, files: Mapping[str, FileStat], workers: int | None = None) -> dict[str, str | None]:
    """sha256 (hex) of every regular file in ``files`` (see :class:`Hashing`)."""
    return Hashing(root, files, workers).result()


def b64_to_hex(value: str) -> str | None:
    """A RECORD hash value (urlsafe base64, unpadded) as hex; None when it is not valid base64."""
    try:
        # base64.urlsafe_b64decode, without importing base64 (and struct) on verify's timed path.
        return binascii.a2b_base64(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)).hex()
    except (ValueError, binascii.Error):
        return None


class Distribution:
    """One ``*.dist-info`` directory, as installed."""

    def __init__(self, name: str, version: str, dist_info: str) -> None:
        self.name = name  # canonical
        self.version = version
        self.dist_info = dist_info  # relative to the environment root
        self.record: dict[str, tuple[str | None, int | None]] = {}  # path -> (sha256 hex, size)
        self.has_record = True
        self.direct_url: dict[str, Any] | None = None
        self.outside: list[str] = []  # RECORD entries that point outside the environment

    @property
    def source(self) -> str:
        return classify_direct_url(self.direct_url)

    @property
    def editable(self) -> bool:
        info = (self.direct_url or {}).get("dir_info") or {}
        return bool(info.get("editable"))

    @property
    def url(self) -> str | None:
        return (self.direct_url or {}).get("url")


def classify_direct_url(direct_url: Mapping[str, Any] | None) -> str:
    """Where a distribution came from, per PEP 610: registry, local (a file or directory), url or vcs."""
    if not direct_url:
        return "registry"  # installers write direct_url.json only for direct references
    if "vcs_info" in direct_url:
        return "vcs"
    if str(direct_url.get("url", "")).startswith("file:"):
        return "local"
    return "url"


def site_packages(files: Iterable[str]) -> list[str]:
    """The site-packages directories (relative) that hold files in this walk."""
    found = set()
    for path in files:
        parts = path.split("/", 4)
        if (
            len(parts) > 3
            and parts[0] == "lib"
            and parts[1].startswith(("python", "pypy"))  # PyPy's venv: lib/pypy3.9/site-packages
            and parts[2] == "site-packages"
        ):
            found.add("/".join(parts[:3]))
    return sorted(found)


def _read_record(root: str, site: str, dist_info: str, dist: Distribution) -> None:
    try:
        with open(os.path.join(root, dist_info, "RECORD"), newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError:
        dist.has_record = False
        return
    except (UnicodeDecodeError, csv.Error):
        rows = []
    for row in rows:
        if not row or not row[0]:
            continue
        path = os.path.normpath(f"{site}/{row[0]}") if not row[0].startswith("/") else row[0]
        if path.startswith(("/", "..")):
            dist.outside.append(row[0])
            continue
        digest = None
        if len(row) > 1 and row[1].startswith("sha256="):
            digest = b64_to_hex(row[1].removeprefix("sha256="))
        size = int(row[2]) if len(row) > 2 and row[2].isdigit() else None
        dist.record[path] = (digest, size)


def read_distributions(root: str, files: Iterable[str]) -> list[Distribution]:
    """Every installed distribution (``*.dist-info``) in the environment's site-packages."""
    return distributions_in(root, site_packages(files))


def distributions_in(root: str, sites: Iterable[str]) -> list[Distribution]:
    """Every ``*.dist-info`` in these site-packages directories (relative to ``root``)."""
    dists: list[Distribution] = []
    for site in sites:
        try:
            names = sorted(os.listdir(os.path.join(root, site)))
        except OSError:
            continue
        for entry in names:
            if not entry.endswith(".dist-info") or "-" not in entry:
                continue
            name, _, version = entry.removesuffix(".dist-info").partition("-")
            dist_info = f"{site}/{entry}"
            dist = Distribution(canonicalize_name(name), version, dist_info)
            _read_record(root, site, dist_info, dist)
            try:
                with open(os.path.join(root, dist_info, "direct_url.json"), encoding="utf-8") as fh:
                    loaded = json.load(fh)
                dist.direct_url = loaded if isinstance(loaded, dict) else {"url": "?"}
            except FileNotFoundError:
                pass
            except (OSError, ValueError):
                dist.direct_url = {"url": "(unreadable direct_url.json)"}
            dists.append(dist)
    return dists
