"""What an SBOM says, decided from plain data: no CycloneDX here, no file read, no process started.

A generation's SBOM lists what its sealed manifest says is installed (``distributions``), each with the
lock's account of it (:func:`lock_entries`: its source, its files and their sha256). Of a package's
locked wheels the one that was installed is the one whose file name carries the tags of the installed
``*.dist-info/WHEEL`` (:func:`installed_artifact`); a package uv built from its sdist matches none, and
gets the sdist's hash. Each component says which (``hash_of``), and members carry the content hash of
their sources and the commit they were built from. :mod:`venvkeeper.sbom.document` writes it as
CycloneDX.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packageurl import PackageURL
from packaging.tags import parse_tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from venvkeeper.core.names import canonicalize_name

__all__ = [
    "Artifact",
    "Component",
    "LockEntry",
    "SbomFacts",
    "bundle_facts",
    "component_for",
    "generation_facts",
    "installed_artifact",
    "lock_entries",
    "member_component",
]


@dataclass(frozen=True)
class Artifact:
    filename: str
    sha256: str | None
    kind: str  # "wheel" or "sdist"


@dataclass(frozen=True)
class LockEntry:
    """One package of a lock: where it comes from, its files, what it depends on."""

    name: str
    version: str
    source: str  # "registry", "git", "url", "path" (a local file or directory) or "member"
    qualifiers: tuple[tuple[str, str], ...] = ()  # the purl's: vcs_url, download_url
    wheels: tuple[Artifact, ...] = ()
    sdist: Artifact | None = None
    depends: tuple[str, ...] = ()
    index: str | None = None  # the registry it was locked from, without credentials


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    kind: str  # as LockEntry.source
    purl: str | None  # pkg:pypi/..., or pkg:generic/... for members and local paths (not on an index)
    sha256: str | None
    hash_of: str  # "wheel", "sdist", "member-source" or "none"
    artifact: str | None = None
    commit: str | None = None
    depends: tuple[str, ...] = ()
    index: str | None = None  # LockEntry.index: a property, not the purl's repository_url

    @property
    def ref(self) -> str:
        return (
            f"member:{self.name}"
            if self.kind == "member"
            else self.purl or f"local:{self.name}@{self.version}"
        )


@dataclass(frozen=True)
class SbomFacts:
    """Everything the document holds: nothing that differs between two builds of the same content."""

    subject: str  # "generation" or "bundle"
    project: str
    components: tuple[Component, ...]
    project_version: str | None = None
    commit: str | None = None
    timestamp: str | None = None  # ISO 8601 UTC: the lock's commit time; None outside git
    properties: tuple[tuple[str, str], ...] = field(default=())


def _purl(name: str, version: str, qualifiers: Sequence[tuple[str, str]], kind: str = "registry") -> str:
    """``pkg:pypi/name@version`` (https://github.com/package-url/purl-spec, type pypi: the name lower
    case with ``-`` for ``_``), its qualifiers encoded by packageurl-python, the spec's own library.

    A member or a local path is ``pkg:generic/name@version``: it was never published, and a pypi purl
    would let a scanner match it to an unrelated PyPI project that happens to have its name."""
    purl_type = "generic" if kind in ("member", "path") else "pypi"
    return str(
        PackageURL(purl_type, None, canonicalize_name(name), version, dict(qualifiers) or None).to_string()
    )


def _hash(value: Any) -> str | None:
    text = str(value or "")
    return text.removeprefix("sha256:") if text.startswith("sha256:") else None


def _filename(entry: Mapping[str, Any]) -> str:
    for key in ("filename", "path", "url"):
        if entry.get(key):
            # A URL's query and fragment (a presigned link's token) are not part of the file's name.
            return urllib.parse.urlsplit(str(entry[key])).path.rstrip("/").rpartition("/")[2]
    return ""


def _public(url: str) -> str:
    """``url`` without the user and password a private index or repository may carry: an SBOM is
    handed to others (uv writes none into uv.lock, but a hand-edited lock may have one)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _download(url: str) -> str:
    """A ``url`` source's address as an SBOM may show it: no credentials, and no query or fragment,
    where a presigned link (S3's ``X-Amz-Signature``, a ``?token=``) carries its secret."""
    parts = urllib.parse.urlsplit(_public(url))
    return urllib.parse.urlunsplit(parts._replace(query="", fragment=""))


def _git(url: str) -> tuple[tuple[str, str], ...]:
    """uv.lock's ``git = "https://host/repo?rev=x#<commit>"`` as the purl's ``vcs_url``."""
    address, _, commit = _public(url).partition("#")
    address = address.partition("?")[0]
    return (("vcs_url", f"git+{address}@{commit}" if commit else f"git+{address}"),)


def _source(source: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    # A registry's packages are plain pkg:pypi purls whatever the index (PyPI, a mirror, a proxy):
    # scanners match advisories by name and version, and a mirror's repository_url would only hide
    # the match. The index is kept as the component's venvkeeper:index property instead.
    if "registry" in source:
        return "registry", ()
    if "git" in source:
        return "git", _git(str(source["git"]))
    if "url" in source:
        return "url", (("download_url", _download(str(source["url"]))),)
    if "path" in source or "directory" in source:
        return "path", ()
    return "member", ()  # editable / virtual: the workspace's own


def lock_entries(lock: Mapping[str, Any]) -> dict[tuple[str, str], LockEntry]:
    """uv.lock's packages by (canonical name, version)."""
    found: dict[tuple[str, str], LockEntry] = {}
    for package in lock.get("package", []):
        name, version = canonicalize_name(str(package.get("name", ""))), str(package.get("version", ""))
        source = package.get("source") or {}
        kind, qualifiers = _source(source)
        sdist = package.get("sdist")
        found[name, version] = LockEntry(
            name,
            version,
            kind,
            qualifiers,
            tuple(Artifact(_filename(w), _hash(w.get("hash")), "wheel") for w in package.get("wheels", [])),
            Artifact(_filename(sdist), _hash(sdist.get("hash")), "sdist")
            if isinstance(sdist, dict)
            else None,
            tuple(sorted({canonicalize_name(str(d.get("name"))) for d in package.get("dependencies", [])})),
            _download(str(source["registry"]).rstrip("/")) if "registry" in source else None,
        )
    return found


def _tags(filename: str) -> frozenset[str]:
    try:
        return frozenset(str(t) for t in parse_wheel_filename(filename)[3])
    except InvalidWheelFilename:
        return frozenset()


def installed_artifact(entry: LockEntry, installed_tags: Iterable[str]) -> Artifact | None:
    """The locked file that was installed: the wheel whose file name's tags are the installed WHEEL's
    ``Tag:`` lines (the most of them in common), else the sdist uv built it from, else None."""
    tags = frozenset(t for line in installed_tags for t in (str(x) for x in parse_tag(line)))
    best, shared = None, 0
    for wheel in sorted(entry.wheels, key=lambda w: w.filename):
        common = len(_tags(wheel.filename) & tags)
        if common > shared:
            best, shared = wheel, common
    if best is not None:
        return best
    if len(entry.wheels) == 1 and not tags:  # no WHEEL to go by (a bundle): its only wheel
        return entry.wheels[0]
    return entry.sdist


def component_for(
    name: str, version: str, entry: LockEntry | None, installed_tags: Iterable[str]
) -> Component:
    """A third-party distribution as installed, with what its lock entry says of it (None: not locked)."""
    if entry is None:
        return Component(name, version, "unlocked", _purl(name, version, ()), None, "none")
    artifact = installed_artifact(entry, installed_tags)
    return Component(
        name,
        version,
        entry.source,
        _purl(name, version, entry.qualifiers, entry.source),
        artifact.sha256 if artifact is not None else None,
        artifact.kind if artifact is not None and artifact.sha256 else "none",
        artifact.filename if artifact is not None else None,
        depends=entry.depends,
        index=entry.index,
    )


def member_component(
    name: str,
    version: str,
    sha256: str | None,
    commit: str | None,
    depends: tuple[str, ...] = (),
    wheel: str | None = None,
) -> Component:
    """A workspace member: the content hash of its sources as sealed, and the commit it was built from;
    in a bundle, the sha256 of its ``wheel`` (the file the bundle carries) instead."""
    hash_of = "none" if not sha256 else "wheel" if wheel else "member-source"
    purl = _purl(name, version, (), "member")
    return Component(name, version, "member", purl, sha256, hash_of, wheel, commit, depends)


def generation_facts(
    distributions: Mapping[str, Mapping[str, Any]],
    wheel_tags: Mapping[str, Sequence[str]],
    entries: Mapping[tuple[str, str], LockEntry],
    members: Mapping[str, str | None],
    *,
    project: str,
    commit: str | None,
    timestamp: str | None,
) -> SbomFacts:
    """A generation's SBOM: every distribution its manifest names (``distributions``, with the ``Tag:``
    lines of each one's installed WHEEL), the lock's ``entries``, and the ``members`` (name: the content
    hash of its sources) built from ``commit``."""
    components = []
    for name, dist in sorted(distributions.items()):
        version = str(dist.get("version", ""))
        depends = entries[name, version].depends if (name, version) in entries else ()
        if name in members:
            components.append(member_component(name, version, members[name], commit, depends))
        else:
            components.append(
                component_for(name, version, entries.get((name, version)), wheel_tags.get(name, ()))
            )
    own = str(distributions[project].get("version", "")) if project in distributions else None
    return SbomFacts("generation", project, tuple(components), own, commit, timestamp)


def bundle_facts(
    entries: Mapping[tuple[str, str], LockEntry],
    artifacts: Sequence[tuple[str, str, Artifact]],
    members: Sequence[tuple[str, str, Artifact]],
    *,
    project: str,
    project_version: str | None,
    commit: str | None,
    timestamp: str | None,
) -> SbomFacts:
    """A bundle's SBOM: each package by the lock's file it carries (name, version, that file: a wheel,
    or the sdist its wheel was built from), and each member by its wheel."""
    components = []
    for name, version, artifact in artifacts:
        entry = entries.get((name, version))
        kind, qualifiers, depends = (
            (entry.source, entry.qualifiers, entry.depends) if entry else ("unlocked", (), ())
        )
        purl = _purl(name, version, qualifiers, kind)
        components.append(
            Component(
                name,
                version,
                kind,
                purl,
                artifact.sha256,
                artifact.kind,
                artifact.filename,
                depends=depends,
                index=entry.index if entry else None,
            )
        )
    by_name = {name: entry for (name, _), entry in entries.items() if entry.source == "member"}
    for name, version, wheel in members:
        depends = by_name[name].depends if name in by_name else ()
        components.append(member_component(name, version, wheel.sha256, commit, depends, wheel.filename))
    return SbomFacts("bundle", project, tuple(components), project_version, commit, timestamp)
