"""An installed environment against what venvkeeper recorded about it: the proof behind verify.

:func:`resolve` finds the environment behind ``--env`` and its generation's record; :func:`inspect`
reads it (:mod:`venvkeeper.core.envscan`) and compares every file and distribution with the sealed
manifest, each distribution's RECORD and the recorded packages (:mod:`venvkeeper.generations.findings`
decides what differs). ``verify`` reports the findings; ``deploy --repair``, ``update`` and ``heal`` act
on them. Nothing is written and no lock is taken: a complete generation never changes, so this can run
beside a deploy.

On verify's timed path (100 ms on a 900-file environment, start-up included): no click, pathlib,
typing or dataclasses here.
"""

from __future__ import annotations

import hashlib
import os

from venvkeeper.core import paths
from venvkeeper.core.envscan import FileStat, Hashing, read_distributions, walk
from venvkeeper.core.errors import CannotVerifyError
from venvkeeper.core.lazy import lazy
from venvkeeper.generations.findings import (
    Expected,
    Finding,
    compare_bytecode,
    compare_files,
    compare_packages,
    fold,
)
from venvkeeper.generations.manifest import Manifest, read_manifest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from venvkeeper.gateways import uv
else:
    uv = lazy("venvkeeper.gateways.uv")  # asks uv for its cache: only for a modified file that is a hard link

__all__ = [
    "Check",
    "Inspection",
    "Subject",
    "inspect",
    "load_manifest",
    "repair_command",
    "resolve",
    "sealed_subject",
    "verify",
]


def repair_command(state: Mapping[str, Any] | None) -> str:
    """The deploy that builds a generation afresh: ``--lock LOCK`` too for one deployed from a lock."""
    state = state or {}
    lock = (state.get("options") or {}).get("pylock") if state.get("kind") == "pylock" else None
    return f"venvkeeper deploy --lock {lock} --repair" if lock else "venvkeeper deploy --repair"


class Check:
    """One kind of check an inspection made: "ok", "findings", or "not-possible" (and why)."""

    __slots__ = ("name", "reason", "status")

    def __init__(self, name: str, status: str, reason: str = "") -> None:
        self.name = name
        self.status = status
        self.reason = reason

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "reason": self.reason}


class Subject:
    """The environment being verified, and what venvkeeper recorded about it (if anything)."""

    def __init__(
        self,
        env: str,
        directory: str,
        kind: str,
        generation: int | None = None,
        state: dict[str, Any] | None = None,
        manifest_path: str | None = None,
        why_no_manifest: str = "",
    ) -> None:
        self.env = env  # as given
        self.directory = directory  # the venv itself (the live generation behind venvkeeper's symlink)
        self.kind = kind  # "generation", "in-place" or "venv" (not deployed by venvkeeper)
        self.generation = generation
        self.state = state  # the generation's record (generations.GenerationState, as JSON)
        self.manifest_path = manifest_path
        self.why_no_manifest = why_no_manifest


class Inspection:
    """What :func:`inspect` read and found: the sealed manifest (if any), the files, the findings and
    the checks it could or could not make."""

    def __init__(self, manifest: Manifest | None, files: int, bytes_hashed: int) -> None:
        self.manifest = manifest
        self.files = files
        self.bytes_hashed = bytes_hashed
        self.findings: list[Finding] = []
        self.checks: list[Check] = []


def resolve(env: str) -> Subject:
    """Find the environment behind --env and venvkeeper's record of it."""
    absolute = os.path.abspath(env)
    if not os.path.lexists(absolute):
        raise CannotVerifyError(f"{absolute}: no such environment", hint="check the --env path")
    home = paths.home(absolute)
    directory, number, state = paths.locate(absolute)
    if number is not None:
        if state is None:
            return Subject(env, directory, "venv", number, why_no_manifest="its generation record is missing")
        if state.get("kind") not in ("deploy", "install", "pylock"):
            return Subject(
                env, directory, "venv", number, state, why_no_manifest="adopted, not built by venvkeeper"
            )
        return Subject(env, directory, "generation", number, state, paths.manifest_file(home, number))
    if not os.path.isfile(f"{directory}/pyvenv.cfg"):
        raise CannotVerifyError(
            f"{absolute}: not a virtual environment (no pyvenv.cfg)",
            hint="point --env at a venv, or at the path venvkeeper deploys to",
        )
    if state is not None:
        return Subject(env, directory, "in-place", None, state, f"{home}/in-place.manifest.json")
    return Subject(env, directory, "venv", why_no_manifest="not deployed by venvkeeper")


def sealed_subject(env: str, purpose: str) -> Subject:
    """The generation behind ``env`` with its record and manifest, or one error line saying why there is
    none (``purpose``: what needs it, e.g. "an SBOM describes a sealed generation")."""
    subject = resolve(env)
    if subject.kind not in ("generation", "in-place") or subject.manifest_path is None or not subject.state:
        raise CannotVerifyError(
            f"{env}: {subject.why_no_manifest or 'not an environment venvkeeper built'}: {purpose}",
            hint="deploy or install it with venvkeeper first",
        )
    return subject


def load_manifest(subject: Subject) -> Manifest | None:
    """The subject's sealed manifest, checked against its record's sha256 (None when it has none)."""
    if subject.manifest_path is None:
        return None
    try:
        with open(subject.manifest_path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        # A generation built before manifests existed, or an in-place deploy cut short.
        subject.why_no_manifest = f"no sealed manifest ({os.path.basename(subject.manifest_path)} is missing)"
        return None
    except OSError as exc:
        raise CannotVerifyError(
            f"{subject.manifest_path}: cannot be read: {exc.strerror}",
            hint="run verify as a user who can read the environment's state directory",
        ) from None
    recorded = (subject.state or {}).get("manifest_sha256")
    if recorded and hashlib.sha256(raw).hexdigest() != recorded:
        raise CannotVerifyError(
            f"{subject.manifest_path}: does not match the sha256 in its generation record",
            hint=f"it was changed after the deploy; `{repair_command(subject.state)}` seals a new one",
        )
    try:
        return read_manifest(raw)
    except ValueError as exc:
        raise CannotVerifyError(
            f"{subject.manifest_path}: cannot be read: {exc}",
            hint=f"it is damaged; `{repair_command(subject.state)}` builds and seals a new generation",
        ) from None


def _recorded_expectations(
    subject: Subject, manifest: Manifest | None
) -> tuple[dict[str, Expected], str] | None:
    """What should be installed, from the manifest (or, for an older generation, its record)."""
    if manifest is not None:
        expected = {
            name: Expected(
                d["version"],
                d["source"],
                d["url"] if d["source"] in ("url", "vcs") else None,
                None if d["editable"] else False,
            )
            for name, d in manifest.distributions.items()
        }
        return expected, "manifest"
    state = subject.state
    if state is not None and subject.kind != "venv":
        members = {m["name"] for m in state.get("members", []) if m.get("package")}
        packages: dict[str, str] = state.get("packages", {})
        return {
            name: Expected(version, "local" if name in members else "", None, False)
            for name, version in packages.items()
        }, "generation record"
    return None


def _scaffolding(directory: str, disk: Mapping[str, FileStat]) -> set[str]:
    """virtualenv's own start-up hook, recognised by its exact content (no RECORD owns it)."""
    found = set()
    for path in disk:
        if path.endswith("/site-packages/_virtualenv.pth"):
            try:
                with open(f"{directory}/{path}", encoding="utf-8") as fh:
                    if fh.read().strip() == "import _virtualenv":
                        found.add(path)
            except (OSError, UnicodeDecodeError):
                pass
        elif path.endswith("/site-packages/_virtualenv.py"):
            found.add(path)
    return found


def _mark_cache_links(
    findings: Sequence[Finding], disk: Mapping[str, FileStat], state: dict[str, Any] | None
) -> None:
    """Mark modified files that are hard links into uv's cache: the edit damaged the cache too.

    uv installs by hard-linking from its cache (its default link mode on Linux), so an edit in
    place inside an environment changes the cached file, and every later install copies it.
    """
    stats = [(f, disk.get(f.path or "")) for f in findings if f.category == "modified"]
    linked = [(f, st) for f, st in stats if st is not None and st.nlink > 1]
    if not linked:
        return
    roots = [state["uv_cache_dir"]] if state and state.get("uv_cache_dir") else []
    if not roots:
        current = uv.uv_cache().dir
        roots = [current] if current else []
    # uv unpacks each wheel once under archive-vN/<id>/ and links installs to it.
    buckets = [f"{root}/{name}" for root in roots for name in _listdir(root) if name.startswith("archive-v")]
    archives = [f"{bucket}/{entry}" for bucket in buckets for entry in _listdir(bucket)]
    for finding, st in linked:
        _, sep, inside = str(finding.path).partition("/site-packages/")
        for archive in archives if sep else []:
            try:
                other = os.stat(f"{archive}/{inside}")
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.dev, st.ino):
                finding.cache = f"{archive}/{inside}"
                break


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def inspect(
    subject: Subject, *, fast: bool = False, expected: tuple[dict[str, Expected], str] | None = None
) -> Inspection:
    """Compare the environment with its manifest, its RECORDs and the expected distributions."""
    root = subject.directory
    pycache: dict[str, FileStat] = {}
    disk = walk(root, pycache=pycache)
    if "pyvenv.cfg" not in disk:
        raise CannotVerifyError(
            f"{root}: not a virtual environment (no pyvenv.cfg)", hint="check the --env path"
        )
    # The bytecode is hashed with the files (helper threads start on the large files now); nearly all
    # of it is sealed, and what is not is rare enough not to pick out before the manifest is read.
    # Without a manifest there is nothing to hold it to.
    sealed = pycache and not fast and subject.manifest_path is not None
    everything = {**disk, **pycache} if sealed else disk
    hashing = None if fast else Hashing(root, everything)
    manifest = load_manifest(subject)
    dists = read_distributions(root, disk)
    hashes = None if hashing is None else hashing.result()
    hashed = 0 if fast else sum(s.size for s in everything.values() if s.link is None)
    out = Inspection(manifest, len(disk) + len(pycache), hashed)
    if expected is None:
        expected = _recorded_expectations(subject, manifest)
    package: list[Finding] = []
    if expected is None:
        reason = "venvkeeper did not deploy this environment; pass --project to check it against a lock"
        out.checks.append(Check("lock", "not-possible", reason))
    else:
        package = compare_packages(expected[0], dists, expected[1])
        out.checks.append(Check("lock", "findings" if package else "ok", f"against the {expected[1]}"))
    scaffolding = _scaffolding(root, disk) if manifest is None else set()
    files = compare_files(disk, hashes, manifest, dists, scaffolding)
    _mark_cache_links(files, disk, subject.state)
    what = "sizes and presence" if fast else "sha256"
    if manifest is None:
        out.checks.append(Check("manifest", "not-possible", subject.why_no_manifest or "no sealed manifest"))
    else:
        bad = any(f.reference and "manifest" in f.reference for f in files)
        out.checks.append(Check("manifest", "findings" if bad else "ok", what))
    bad_record = any(
        f.reference and "RECORD" in f.reference and f.category != "unowned-startup-code" for f in files
    )
    no_record = [d.name for d in dists if not d.has_record]
    record_reason = what + (f"; no RECORD for {', '.join(no_record)}" if no_record else "")
    out.checks.append(Check("record", "findings" if bad_record else "ok", record_reason))
    startup = any(f.category == "unowned-startup-code" for f in files)
    out.checks.append(Check("startup-code", "findings" if startup else "ok", ".pth, *customize.py, bin/"))
    if manifest is not None:
        bytecode = compare_bytecode(pycache, hashes, manifest)
        out.checks.append(_bytecode_check(manifest, bytecode, what))
        files += bytecode
    out.findings = fold(package, files)
    moved = _moved(subject)
    if moved is not None:
        out.findings.append(moved)
        out.checks.append(Check("location", "findings", "where the environment was built"))
    return out


def _bytecode_check(manifest: Manifest, found: Sequence[Finding], what: str) -> Check:
    status = "findings" if found else "ok"
    if manifest.cache_tag:
        return Check("bytecode", status, f"{what}; every .pyc of {manifest.cache_tag} for a sealed module")
    # Sealed before the deploy compiled every module: its map holds what the smoke check's imports
    # wrote, and the application writes the rest, so bytecode that is not sealed proves nothing.
    reason = f"{what} of the sealed .pyc only (sealed before all bytecode was; the next deploy compiles it)"
    return Check("bytecode", status, reason)


def _moved(subject: Subject) -> Finding | None:
    """A generation that no longer lives where it was built: byte for byte what was sealed, but its
    scripts start the interpreter at the old path (exit 127). Reported with the files naming it."""
    if subject.kind == "venv" or subject.state is None:
        return None
    old = paths.moved_from(subject.state, subject.directory, subject.generation)
    if old is None:
        return None
    here = subject.directory
    finding = Finding("moved", None, ".", f"built at {old}", f"now at {here}", "generation record")
    needle = f"{old}/bin/".encode()
    bindir = f"{subject.directory}/bin"
    for name in sorted(_listdir(bindir)):
        if os.path.islink(f"{bindir}/{name}"):
            continue  # bin/python*: links to the base interpreter, which did not move
        try:
            with open(f"{bindir}/{name}", "rb") as fh:
                head = fh.read(4096)
        except OSError:
            continue
        # A script's #! line (or uv's /bin/sh trampoline) names OLD/bin/python; activate, OLD.
        if needle in head or (name.startswith("activate") and old.encode() in head):
            finding.files.append({"category": "names-old-path", "path": f"bin/{name}"})
    return finding


def verify(env: str, *, fast: bool = False) -> Inspection:
    """The environment behind ``env`` against its record and sealed manifest (resolved, then inspected)."""
    return inspect(resolve(env), fast=fast)
