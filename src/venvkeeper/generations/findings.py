"""What an inspection of an environment finds (:mod:`.inspection`), computed from what was read (no I/O).

Package findings compare the installed distributions with what was expected (the generation's
manifest, or the project's lock): ``missing``, ``extra``, ``version``, ``source``, ``editable``.
File findings compare every file with the sealed manifest and with each distribution's RECORD:
``modified``, ``missing-file``, ``unexpected-file``, and ``unowned-startup-code`` for code that
runs when the interpreter starts (``.pth``, ``sitecustomize``/``usercustomize``, ``bin/``
executables) that no RECORD owns. Bytecode findings (``bytecode``) compare ``__pycache__`` with the
sealed bytecode: a ``.pyc`` runs on import instead of its source, so one that is not the sealed one
is code nobody checked (docs/bytecode.md). A file finding that belongs to a distribution with a package
finding (an extra or downgraded distribution's files) is folded into that finding, so one cause is
reported once.
"""

from __future__ import annotations

import re

from venvkeeper.core.envscan import site_packages
from venvkeeper.generations.manifest import compiled_source, source_of

TYPE_CHECKING = False  # no typing or dataclasses at run time: see envscan.FileStat
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
    from typing import Any

    from venvkeeper.core.envscan import Distribution, FileStat
    from venvkeeper.generations.manifest import Manifest

__all__ = [
    "PACKAGE_CATEGORIES",
    "Expected",
    "Finding",
    "compare_bytecode",
    "compare_files",
    "compare_packages",
    "fold",
    "is_startup_code",
    "is_venv_scaffolding",
]

PACKAGE_CATEGORIES = frozenset({"missing", "extra", "version", "source", "editable"})

# The interpreter links a venv creator makes in bin/ (python, python3, python3.12, python3.13t, pythonw).
_PYTHON_LINK = re.compile(r"bin/python(3(\.\d+)?)?t?w?")


class Finding:
    def __init__(
        self,
        category: str,
        distribution: str | None = None,
        path: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
        reference: str | None = None,
    ) -> None:
        self.category = category
        self.distribution = distribution
        self.path = path
        self.expected = expected
        self.actual = actual
        # Which reference disagrees: "manifest", "RECORD", "lock", "generation record", "git".
        self.reference = reference
        # A file in uv's cache that is the same inode (a hard link): editing one edited the other.
        self.cache: str | None = None
        # File findings folded into a package finding.
        self.files: list[dict[str, Any]] = []
        # What puts it right, when the finding says so itself (verify prints it, and its JSON has it).
        self.fix: str | None = None

    def __repr__(self) -> str:
        return f"Finding({self.category!r}, {self.distribution!r}, {self.path!r})"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "category": self.category,
            "distribution": self.distribution,
            "path": self.path,
            "expected": self.expected,
            "actual": self.actual,
            "reference": self.reference,
        }
        if self.cache is not None:
            data["cache"] = self.cache
        if self.files:
            data["files"] = self.files
        if self.fix is not None:
            data["fix"] = self.fix
        return data


class Expected:
    __slots__ = ("editable", "reference", "source", "url", "version")

    def __init__(
        self,
        version: str | None,
        source: str,
        url: str | None = None,
        editable: bool | None = False,
        reference: str | None = None,
    ) -> None:
        self.version = version  # None: not known anywhere (a dynamic version, no record), not compared
        self.source = source  # "registry", "local", "url", "vcs"; "" when unknown
        self.url = url  # compared for url and vcs sources only
        self.editable = editable  # False: must not be editable; None: either is fine
        # Where this expectation came from, when not the comparison's reference: a member whose
        # version the lock does not hold is expected at the version its generation recorded.
        self.reference = reference


# -- packages ----------------------------------------------------------------------------------


def compare_packages(
    expected: Mapping[str, Expected], installed: Sequence[Distribution], reference: str
) -> list[Finding]:
    by_name: dict[str, list[Distribution]] = {}
    for dist in installed:
        by_name.setdefault(dist.name, []).append(dist)
    found: list[Finding] = []
    for name in sorted(set(expected) | set(by_name)):
        want, have = expected.get(name), by_name.get(name, [])
        if want is None:
            for dist in have:
                found.append(Finding("extra", name, dist.dist_info, None, dist.version, reference))
            continue
        if not have:
            found.append(Finding("missing", name, None, want.version, None, want.reference or reference))
            continue
        if len(have) > 1 or (want.version is not None and have[0].version != want.version):
            paths = ", ".join(d.dist_info for d in have)
            actual = ", ".join(d.version for d in have)
            found.append(Finding("version", name, paths, want.version, actual, want.reference or reference))
            continue
        dist = have[0]
        if want.source and (
            dist.source != want.source or (want.source in ("url", "vcs") and _url_mismatch(want, dist))
        ):
            found.append(
                Finding(
                    "source",
                    name,
                    dist.dist_info,
                    _source(want.source, want.url),
                    _source(dist.source, dist.url),
                    reference,
                )
            )
        elif want.editable is False and dist.editable:
            found.append(
                Finding("editable", name, dist.dist_info, "non-editable", f"editable ({dist.url})", reference)
            )
    return found


def _url_mismatch(want: Expected, dist: Distribution) -> bool:
    return want.url is not None and want.url != dist.url


def _source(kind: str, url: str | None) -> str:
    return f"{kind} ({url})" if url and kind != "registry" else kind


# -- files -------------------------------------------------------------------------------------


def is_startup_code(path: str, st: FileStat, sites: Collection[str]) -> bool:
    """Code the interpreter runs at start-up: a site-packages .pth or *customize, or a bin/ executable."""
    if path.startswith("bin/"):
        return "/" not in path[4:] and (st.executable or st.link is not None)
    site, _, rest = path.rpartition("/site-packages/")
    if not site or f"{site}/site-packages" not in sites:
        return False
    if "/" not in rest and rest.endswith(".pth"):
        return True
    return rest.split("/", 1)[0] in ("sitecustomize.py", "usercustomize.py", "sitecustomize", "usercustomize")


def is_venv_scaffolding(path: str) -> bool:
    """Files every venv creator writes, owned by no distribution: the interpreter links, activate scripts."""
    if _PYTHON_LINK.fullmatch(path):
        return True
    name = path.removeprefix("bin/")
    return (
        path.startswith("bin/")
        and "/" not in name
        and name.lower().startswith(("activate", "deactivate", "pydoc"))
    )


def _describe(st: FileStat, digest: str | None) -> str:
    if st.link is not None:
        return f"symlink -> {st.link}"
    if digest is None:
        return f"{st.size} bytes"
    return f"sha256:{digest} ({st.size} bytes)"


def compare_files(
    disk: Mapping[str, FileStat],
    hashes: Mapping[str, str | None] | None,
    manifest: Manifest | None,
    installed: Sequence[Distribution],
    scaffolding: Collection[str] = (),
) -> list[Finding]:
    """File findings. ``hashes`` None means sizes and presence only (--fast).

    ``scaffolding`` lists files of a venv without a manifest known to be its creator's (checked by
    the caller, e.g. virtualenv's ``_virtualenv.pth``); with a manifest the manifest decides.
    """
    owners: dict[str, str] = {}
    records: dict[str, tuple[str | None, int | None, str]] = {}
    for dist in installed:
        for path, (digest, size) in dist.record.items():
            owners.setdefault(path, dist.name)
            records[path] = (digest, size, dist.name)
    sites = set(site_packages(disk))
    reported: dict[str, Finding] = {}

    def report(finding: Finding) -> None:
        # One finding per path; a second reference that disagrees too is added to the first.
        key = finding.path or ""
        earlier = reported.get(key)
        if earlier is None:
            reported[key] = finding
        elif finding.reference and earlier.reference and finding.reference not in earlier.reference:
            earlier.reference += f", {finding.reference}"

    if manifest is not None:
        _against_manifest(disk, hashes, manifest, owners, report)
    _against_records(disk, hashes, records, report)
    for path, st in disk.items():
        if manifest is not None and (path in manifest.files or path in manifest.links):
            continue
        if manifest is None and (path in owners or path in scaffolding or is_venv_scaffolding(path)):
            continue
        owner = owners.get(path)
        if owner is None and is_startup_code(path, st, sites):
            report(Finding("unowned-startup-code", None, path, "not present", _describe(st, None), "RECORD"))
        elif manifest is not None:
            report(Finding("unexpected-file", owner, path, "not present", _describe(st, None), "manifest"))
        elif any(path.startswith(site + "/") for site in sites):
            report(Finding("unexpected-file", None, path, "not present", _describe(st, None), "RECORD"))
    return sorted(reported.values(), key=lambda f: (f.path or "", f.category))


def _against_records(
    disk: Mapping[str, FileStat],
    hashes: Mapping[str, str | None] | None,
    records: Mapping[str, tuple[str | None, int | None, str]],
    report: Callable[[Finding], None],
) -> None:
    for path, (digest, size, owner) in records.items():
        if "__pycache__" in path.split("/") or (digest is None and size is None):
            continue  # RECORD lists itself (and bytecode) without a hash
        st = disk.get(path)
        if st is None:
            report(Finding("missing-file", owner, path, "present", "missing", "RECORD"))
            continue
        actual = hashes.get(path) if hashes is not None else None
        if st.link is not None or (size is not None and st.size != size):
            report(Finding("modified", owner, path, f"{size} bytes", _describe(st, actual), "RECORD"))
        elif actual is not None and digest is not None and actual != digest:
            report(Finding("modified", owner, path, f"sha256:{digest}", _describe(st, actual), "RECORD"))


def _against_manifest(
    disk: Mapping[str, FileStat],
    hashes: Mapping[str, str | None] | None,
    manifest: Manifest,
    owners: Mapping[str, str],
    report: Callable[[Finding], None],
) -> None:
    for path, sealed in manifest.files.items():
        owner = owners.get(path) or sealed.owner or None
        st = disk.get(path)
        if st is None:
            report(Finding("missing-file", owner, path, "present", "missing", "manifest"))
            continue
        actual = hashes.get(path) if hashes is not None else None
        expected = f"sha256:{sealed.sha256} ({sealed.size} bytes)"
        if st.link is not None or st.size != sealed.size or (actual is not None and actual != sealed.sha256):
            report(Finding("modified", owner, path, expected, _describe(st, actual), "manifest"))
        elif st.executable != sealed.executable:
            mode = ("executable", "not executable")
            report(
                Finding(
                    "modified", owner, path, mode[not sealed.executable], mode[not st.executable], "manifest"
                )
            )
    for path, target in manifest.links.items():
        st = disk.get(path)
        owner = owners.get(path)
        if st is None:
            report(Finding("missing-file", owner, path, f"symlink -> {target}", "missing", "manifest"))
        elif st.link != target:
            report(
                Finding(
                    "modified",
                    owner,
                    path,
                    f"symlink -> {target}",
                    _describe(st, hashes.get(path) if hashes else None),
                    "manifest",
                )
            )


# -- bytecode ----------------------------------------------------------------------------------


def compare_bytecode(
    pycache: Mapping[str, FileStat], hashes: Mapping[str, str | None] | None, manifest: Manifest
) -> list[Finding]:
    """Bytecode findings: each sealed ``.pyc`` that is no longer what was sealed, and, when the deploy
    compiled every module (the manifest names the interpreter's cache tag), any other ``.pyc`` of that
    tag for a sealed module of site-packages: CPython would load it instead of the sealed source. A
    sealed ``.pyc`` that is missing is no finding (the sealed source runs, and CPython compiles it);
    the one CPython then writes in timestamp mode is, as verify cannot tell it from a planted one.
    Bytecode of another tag (another interpreter's: never loaded here) and of modules that are not
    sealed (written at run time for files the deploy did not install) is not looked at."""
    found: list[Finding] = []
    tag = manifest.cache_tag
    for path, st in pycache.items():
        sealed = manifest.bytecode.get(path)
        source, level = compiled_source(path, tag) if tag else (source_of(path), 0)
        if source is None or (sealed is None and (not tag or source not in manifest.files)):
            continue
        of_source = manifest.files.get(source)
        owner = of_source.owner if of_source is not None and of_source.owner else None
        actual = hashes.get(path) if hashes is not None else None
        under = f" under python -{'O' * level}" if level else ""
        runs = f"it runs on import{under} instead of {source}"
        if sealed is None:
            expected = (
                "not present (the deploy compiled no bytecode of this level)" if level else "not present"
            )
            found.append(
                Finding("bytecode", owner, path, expected, f"{_describe(st, actual)}; {runs}", "manifest")
            )
        elif st.link is not None or (st.size, actual or sealed.sha256) != (sealed.size, sealed.sha256):
            expected = f"sha256:{sealed.sha256} ({sealed.size} bytes)"
            actual_text = f"{_describe(st, actual)}, not the sealed bytecode; {runs}"
            found.append(Finding("bytecode", owner, path, expected, actual_text, "manifest"))
    return sorted(found, key=lambda f: f.path or "")


# -- folding -----------------------------------------------------------------------------------


def fold(package: Iterable[Finding], files: Iterable[Finding]) -> list[Finding]:
    """Package findings first; a file finding of a distribution that has one goes inside it."""
    package = list(package)
    by_dist = {f.distribution: f for f in package if f.distribution}
    rest: list[Finding] = []
    for finding in files:
        owner = by_dist.get(finding.distribution) if finding.distribution else None
        if owner is not None:
            owner.files.append({"category": finding.category, "path": finding.path})
        else:
            rest.append(finding)
    return package + rest
