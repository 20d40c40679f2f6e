"""The sealed manifest: every file of a generation as deploy built it, kept outside the environment.

Written by deploy after the smoke check and before the switch (``generations/NNNN.manifest.json``),
so it describes the environment before anything ran in it. Schema 2 adds each file's identity (inode,
mtime, ctime) and the bytecode the deploy compiled: the next generation is a hard-link clone of this one
(:mod:`venvkeeper.generations.clone`), and a file is linked only while its identity is the sealed one.
``venvkeeper verify`` compares the environment with it; a distribution's RECORD lives inside the
environment and can be rewritten along with the file it describes, the manifest cannot be reached that
way.
"""

from __future__ import annotations

import json
import os

from venvkeeper.core.envscan import hash_files, read_distributions, walk

TYPE_CHECKING = False  # no typing, dataclasses or pathlib at run time: see envscan.FileStat
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from venvkeeper.core.envscan import FileStat

__all__ = [
    "MANIFEST_SCHEMA",
    "Manifest",
    "SealedFile",
    "compiled_source",
    "in_site_packages",
    "read_manifest",
    "seal",
    "seal_bytecode",
    "source_of",
]

MANIFEST_SCHEMA = 2
_READABLE = (1, 2)  # schema 1 (no identities, no bytecode): read, verified, never cloned from


class SealedFile:
    __slots__ = ("ctime_ns", "executable", "ino", "mtime_ns", "owner", "sha256", "size")

    def __init__(
        self,
        size: int,
        sha256: str,
        executable: bool,
        owner: str,
        ino: int = 0,
        mtime_ns: int = 0,
        ctime_ns: int = 0,
    ) -> None:
        self.size = size
        self.sha256 = sha256
        self.executable = executable
        self.owner = owner  # the distribution whose RECORD lists it, or "" (the venv's own files)
        # Its identity when sealed (0: unknown, schema 1): see clone.identical.
        self.ino = ino
        self.mtime_ns = mtime_ns
        self.ctime_ns = ctime_ns

    def row(self) -> list[Any]:
        return [
            self.size,
            self.sha256,
            "x" if self.executable else "-",
            self.owner,
            self.ino,
            self.mtime_ns,
            self.ctime_ns,
        ]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> SealedFile:
        # Indexed, not unpacked: verify parses a row per file on its timed path.
        if len(row) == 7:  # the identity is only compared (never computed with): taken as parsed
            return cls(int(row[0]), str(row[1]), row[2] == "x", str(row[3]), row[4], row[5], row[6])
        size, sha, flag, owner = row  # schema 1
        return cls(int(size), str(sha), flag == "x", str(owner))


class Manifest:
    def __init__(
        self,
        files: dict[str, SealedFile] | None = None,
        links: dict[str, str] | None = None,
        distributions: dict[str, dict[str, Any]] | None = None,
        sources: dict[str, dict[str, str]] | None = None,
        bytecode: dict[str, SealedFile] | None = None,
        dev: int = 0,
        schema: int = MANIFEST_SCHEMA,
        cache_tag: str = "",
    ) -> None:
        self.files = files or {}
        # __pycache__/*.pyc that the deploy compiled before the seal (never what ran later): cloned
        # forward like any sealed file, so a generation's first start is warm.
        self.bytecode = bytecode or {}
        # The environment's interpreter's sys.implementation.cache_tag ("cpython-311") when the deploy
        # compiled every module of site-packages (checked-hash, PEP 552): then any bytecode of that tag
        # for a sealed module must be the sealed one (verify). "" for a generation sealed before that,
        # whose map holds only what the smoke check's imports wrote.
        self.cache_tag = cache_tag
        self.dev = dev  # the filesystem every identity is on
        self.schema = schema
        self.links = links or {}
        # {name: {"version", "source", "url", "editable"}} as installed when sealed.
        self.distributions = distributions or {}
        # {member: {path relative to the workspace root: "x:sha256" / "-:sha256" / "L:target"}}
        self.sources = sources or {}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "dev": self.dev,
            "files": {p: f.row() for p, f in sorted(self.files.items())},
            "links": dict(sorted(self.links.items())),
            "bytecode": {p: f.row() for p, f in sorted(self.bytecode.items())},
            **({"cache_tag": self.cache_tag} if self.cache_tag else {}),
            "distributions": self.distributions,
            "sources": self.sources,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """Parse and check the shape of every entry; ValueError for anything else."""
        if not isinstance(data, dict) or data.get("schema") not in _READABLE:
            raise ValueError(f"not a manifest of schema {' or '.join(map(str, _READABLE))}")
        try:
            files = {str(p): SealedFile.from_row(row) for p, row in data["files"].items()}
            bytecode = {str(p): SealedFile.from_row(row) for p, row in data.get("bytecode", {}).items()}
            links = {str(p): str(t) for p, t in data["links"].items()}
            dists: dict[str, dict[str, Any]] = {}
            for name, d in data["distributions"].items():
                dists[str(name)] = {
                    "version": _text(d["version"], name),
                    "source": _text(d["source"], name),
                    "url": d.get("url"),
                    "editable": bool(d.get("editable")),
                }
            sources = {
                str(m): {str(p): str(e) for p, e in entries.items()}
                for m, entries in data.get("sources", {}).items()
            }
            tag = _text(data.get("cache_tag", ""), "cache_tag")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"damaged manifest ({type(exc).__name__}: {exc})") from None
        return cls(files, links, dists, sources, bytecode, int(data.get("dev", 0)), int(data["schema"]), tag)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where}: {value!r} is not a string")
    return value


def _known(reuse: Mapping[str, SealedFile] | None, path: str, st: FileStat) -> str | None:
    """The sha256 a clone already knows for ``path``: only while the file is still the very inode it
    linked, unwritten since (same size, mtime and ctime as right after the link)."""
    known = reuse.get(path) if reuse else None
    if known is None or (known.ino, known.size, known.mtime_ns, known.ctime_ns) != (
        st.ino,
        st.size,
        st.mtime_ns,
        st.ctime_ns,
    ):
        return None
    return known.sha256


def _hashed(
    root: str, files: Mapping[str, FileStat], reuse: Mapping[str, SealedFile] | None
) -> dict[str, str]:
    todo = {p: st for p, st in files.items() if st.link is None and _known(reuse, p, st) is None}
    hashes = hash_files(root, todo)
    out: dict[str, str] = {}
    for path, st in files.items():
        if st.link is not None:
            continue
        digest = hashes.get(path) if path in todo else _known(reuse, path, st)
        if digest is None:
            raise OSError(f"{root}/{path}: vanished while the manifest was sealed")
        out[path] = digest
    return out


def seal(
    env_dir: str | os.PathLike[str],
    sources: Mapping[str, Mapping[str, str]],
    reuse: Mapping[str, SealedFile] | None = None,
) -> Manifest:
    """Describe ``env_dir`` as it is now: every file's size, sha256, mode and identity, every link's
    target. ``reuse``: the files a clone linked, whose sha256 is not computed again while each is still
    the inode linked (see :func:`_known`)."""
    root = os.fspath(env_dir)
    files = walk(root)
    hashes = _hashed(root, files, reuse)
    dists = read_distributions(root, files)
    owners = {path: d.name for d in dists for path in d.record}
    manifest = Manifest(sources={k: dict(v) for k, v in sources.items()}, dev=os.lstat(root).st_dev)
    for path, st in files.items():
        if st.link is not None:
            manifest.links[path] = st.link
            continue
        manifest.files[path] = SealedFile(
            st.size, hashes[path], st.executable, owners.get(path, ""), st.ino, st.mtime_ns, st.ctime_ns
        )
    for d in dists:
        manifest.distributions[d.name] = {
            "version": d.version,
            "source": d.source,
            "url": d.url,
            "editable": d.editable,
        }
    return manifest


def seal_bytecode(
    env_dir: str | os.PathLike[str],
    manifest: Manifest,
    reuse: Mapping[str, SealedFile] | None = None,
    cache_tag: str = "",
) -> None:
    """Add to ``manifest`` every ``__pycache__`` file now in ``env_dir`` whose source file is sealed in
    it: what the deploy compiled (every module of site-packages, or a clone's delta beside the bytecode
    it linked). Called before the switch, so nothing the application wrote at run time can be among
    them. ``cache_tag``: the interpreter's, when the deploy compiled all of site-packages; only its
    optimization level 0 bytecode is sealed then (what :func:`compiled_source` names)."""
    root = os.fspath(env_dir)
    found = {}
    for p, st in walk(root, bytecode=True).items():
        source, level = compiled_source(p, cache_tag) if cache_tag else (source_of(p), 0)
        if st.link is None and level == 0 and source in manifest.files:
            found[p] = st
    for path, digest in _hashed(root, found, reuse).items():
        st = found[path]
        manifest.bytecode[path] = SealedFile(st.size, digest, False, "", st.ino, st.mtime_ns, st.ctime_ns)
    manifest.cache_tag = cache_tag


def source_of(pyc: str) -> str:
    """``a/__pycache__/m.cpython-311.opt-1.pyc`` -> ``a/m.py`` (module names hold no dot)."""
    folder, _, name = pyc.rpartition("/")
    parent = folder.rpartition("/")[0]
    module = name.partition(".")[0]
    return f"{parent}/{module}.py" if parent else f"{module}.py"


def compiled_source(pyc: str, cache_tag: str) -> tuple[str | None, int]:
    """The module source ``pyc`` (a path inside a ``__pycache__``) is loaded for by an interpreter of
    ``cache_tag``, and its optimization level (0; 1 under ``-O``, 2 under ``-OO``): the name
    :func:`importlib.util.cache_from_source` gives, read backwards. ``(None, 0)``: another tag's, or no
    bytecode at all, which that interpreter never loads (nor a ``__pycache__`` outside site-packages,
    where the deploy compiles nothing)."""
    folder, _, name = pyc.rpartition("/")
    parent, _, cache = folder.rpartition("/")
    module, dot, rest = name.partition(f".{cache_tag}.")
    if cache != "__pycache__" or not dot or not module or not in_site_packages(parent + "/"):
        return None, 0
    level = {"pyc": 0, "opt-1.pyc": 1, "opt-2.pyc": 2}.get(rest)
    if level is None:
        return None, 0
    return f"{parent}/{module}.py", level


def in_site_packages(path: str) -> bool:
    """``lib/python3.X/site-packages/...``: where the deploy compiles every module."""
    parts = path.split("/", 3)
    return len(parts) > 3 and parts[0] == "lib" and parts[2] == "site-packages"


def read_manifest(raw: bytes) -> Manifest:
    """A manifest from its bytes; raises ValueError when it is damaged."""
    return Manifest.from_json(json.loads(raw))
