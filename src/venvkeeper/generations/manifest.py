"""The sealed manifest: every file of a generation as deploy built it, kept outside the environment.

Written by deploy after the smoke check and before the switch (``generations/NNNN.manifest.json``),
so it describes the environment before anything ran in it. ``venvkeeper verify`` compares the
environment with it; a distribution's RECORD lives inside the environment and can be rewritten along
with the file it describes, the manifest cannot be reached that way.
"""

from __future__ import annotations

import json
import os

from venvkeeper.core.envscan import hash_files, read_distributions, walk

TYPE_CHECKING = False  # no typing, dataclasses or pathlib at run time: see envscan.FileStat
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["MANIFEST_SCHEMA", "Manifest", "SealedFile", "read_manifest", "seal"]

MANIFEST_SCHEMA = 1


class SealedFile:
    __slots__ = ("executable", "owner", "sha256", "size")

    def __init__(self, size: int, sha256: str, executable: bool, owner: str) -> None:
        self.size = size
        self.sha256 = sha256
        self.executable = executable
        self.owner = owner  # the distribution whose RECORD lists it, or "" (the venv's own files)


class Manifest:
    def __init__(
        self,
        files: dict[str, SealedFile] | None = None,
        links: dict[str, str] | None = None,
        distributions: dict[str, dict[str, Any]] | None = None,
        sources: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.files = files or {}
        self.links = links or {}
        # {name: {"version", "source", "url", "editable"}} as installed when sealed.
        self.distributions = distributions or {}
        # {member: {path relative to the workspace root: "x:sha256" / "-:sha256" / "L:target"}}
        self.sources = sources or {}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "files": {
                p: [f.size, f.sha256, "x" if f.executable else "-", f.owner]
                for p, f in sorted(self.files.items())
            },
            "links": dict(sorted(self.links.items())),
            "distributions": self.distributions,
            "sources": self.sources,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """Parse and check the shape of every entry; ValueError for anything else."""
        if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
            raise ValueError(f"not a manifest of schema {MANIFEST_SCHEMA}")
        try:
            files = {
                str(p): SealedFile(int(size), str(sha), flag == "x", str(owner))
                for p, (size, sha, flag, owner) in data["files"].items()
            }
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
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"damaged manifest ({type(exc).__name__}: {exc})") from None
        return cls(files, links, dists, sources)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where}: {value!r} is not a string")
    return value


def seal(env_dir: str | os.PathLike[str], sources: Mapping[str, Mapping[str, str]]) -> Manifest:
    """Describe ``env_dir`` as it is now: every file's size, sha256 and mode, every link's target."""
    root = os.fspath(env_dir)
    files = walk(root)
    hashes = hash_files(root, files)
    dists = read_distributions(root, files)
    owners = {path: d.name for d in dists for path in d.record}
    manifest = Manifest(sources={k: dict(v) for k, v in sources.items()})
    for path, st in files.items():
        if st.link is not None:
            manifest.links[path] = st.link
            continue
        digest = hashes.get(path)
        if digest is None:
            raise OSError(f"{root}/{path}: vanished while the manifest was sealed")
        manifest.files[path] = SealedFile(st.size, digest, st.executable, owners.get(path, ""))
    for d in dists:
        manifest.distributions[d.name] = {
            "version": d.version,
            "source": d.source,
            "url": d.url,
            "editable": d.editable,
        }
    return manifest


def read_manifest(raw: bytes) -> Manifest:
    """A manifest from its bytes; raises ValueError when it is damaged."""
    return Manifest.from_json(json.loads(raw))
