"""``venvkeeper verify``: prove an installed environment is what its lock says, file by file.

Reads the environment (:mod:`envscan`), the generation's record and sealed manifest
(:mod:`paths`, :mod:`manifest`) and, with ``--project``, the project's lock (through uv's export)
and git; :mod:`findings` decides what differs. Nothing is written anywhere and no lock is taken: a
complete generation never changes, so verify can run beside a deploy.

The command is timed (100 ms on a 900-file environment, start-up included), so this path imports
neither click, pathlib, typing nor dataclasses; ``--project`` loads what it needs when asked.
"""

from __future__ import annotations

import os
import time

from venvkeeper.core import paths
from venvkeeper.core.envscan import FileStat, Hashing, read_distributions, walk
from venvkeeper.core.errors import CannotVerifyError
from venvkeeper.generations.manifest import Manifest, read_manifest
from venvkeeper.verify.findings import Expected, Finding, compare_files, compare_packages, fold
from venvkeeper.verify.result import Check, VerifyResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from venvkeeper.project.workspace import Workspace

__all__ = ["Inspection", "Subject", "inspect", "main", "resolve", "verify"]


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
        if state.get("kind") not in ("deploy", "install"):
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


def _load_manifest(subject: Subject) -> Manifest | None:
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
    import hashlib  # noqa: PLC0415

    recorded = (subject.state or {}).get("manifest_sha256")
    if recorded and hashlib.sha256(raw).hexdigest() != recorded:
        raise CannotVerifyError(
            f"{subject.manifest_path}: does not match the sha256 in its generation record",
            hint="it was changed after the deploy; `venvkeeper deploy --repair` builds and seals a new one",
        )
    try:
        return read_manifest(raw)
    except ValueError as exc:
        raise CannotVerifyError(
            f"{subject.manifest_path}: cannot be read: {exc}",
            hint="it is damaged; `venvkeeper deploy --repair` builds and seals a new generation",
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
        from venvkeeper.generations.engine import cache_dir  # noqa: PLC0415 - runs uv, only when needed

        current = cache_dir()
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
    disk = walk(root)
    if "pyvenv.cfg" not in disk:
        raise CannotVerifyError(
            f"{root}: not a virtual environment (no pyvenv.cfg)", hint="check the --env path"
        )
    hashing = None if fast else Hashing(root, disk)  # helper threads start on the large files now
    manifest = _load_manifest(subject)
    dists = read_distributions(root, disk)
    hashes = None if hashing is None else hashing.result()
    hashed = 0 if fast else sum(s.size for s in disk.values() if s.link is None)
    out = Inspection(manifest, len(disk), hashed)
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
    out.findings = fold(package, files)
    moved = _moved(subject)
    if moved is not None:
        out.findings.append(moved)
        out.checks.append(Check("location", "findings", "where the environment was built"))
    return out


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


# -- --project ---------------------------------------------------------------------------------


def _lock_expectations(project: str, subject: Subject) -> tuple[dict[str, Expected], Workspace]:
    """What the project's current lock installs for the recorded groups, on this interpreter."""
    from pathlib import Path  # noqa: PLC0415

    from packaging.markers import Marker  # noqa: PLC0415

    from venvkeeper.core.names import canonicalize_name  # noqa: PLC0415
    from venvkeeper.generations import engine  # noqa: PLC0415
    from venvkeeper.generations.smoke import marker_environment  # noqa: PLC0415
    from venvkeeper.project.workspace import load_lock_members, load_workspace, parse_lock  # noqa: PLC0415

    workspace = load_workspace(Path(project))
    lock = parse_lock(workspace)
    members = load_lock_members(workspace, lock)
    state = subject.state if subject.kind != "venv" else None
    groups = tuple(state.get("options", {}).get("groups", ())) if state else workspace.config.groups
    markers = (state or {}).get("interpreter", {}).get("markers")
    markers = markers or marker_environment(Path(subject.directory) / "bin" / "python")
    if markers is None:
        raise CannotVerifyError(
            f"{subject.directory}/bin/python does not run, so the lock's markers cannot be evaluated",
            hint="`venvkeeper doctor` tells why; verify without --project still checks the files",
        )
    locked: dict[str, list[dict[str, Any]]] = {}
    for pkg in lock.get("package", []):
        locked.setdefault(canonicalize_name(pkg["name"]), []).append(pkg)
    editable = None if subject.kind == "venv" else False  # a plain venv may hold members editable
    recorded: Mapping[str, str] = (state or {}).get("packages") or {}
    expected: dict[str, Expected] = {}
    for member in members:
        if member.package:
            versions = [str(p.get("version") or "") for p in locked.get(member.name, [])]
            expected[member.name] = _local_expectation(
                versions[0] if versions else "", recorded.get(member.name), editable
            )
    by_path = _locked_paths(str(workspace.root), lock)
    # The environment's own interpreter: uv's discovery would follow the project's .python-version.
    python = Path(subject.directory) / "bin" / "python"
    for raw in engine.export_requirements(workspace.root, groups, python).splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or (line.startswith("-") and not line.startswith("-e ")):
            continue
        requirement, _, marker = line.partition(" ; ")
        if marker and not Marker(marker).evaluate(markers):
            continue
        found = _requirement_expectation(requirement, workspace.root, locked, by_path, recorded, editable)
        if found is not None:
            expected[found[0]] = found[1]
    return expected, workspace


def _requirement_expectation(
    requirement: str,
    root: object,
    locked: Mapping[str, list[dict[str, Any]]],
    by_path: Mapping[str, Mapping[str, Any]],
    recorded: Mapping[str, str],
    editable: bool | None,
) -> tuple[str, Expected] | None:
    """One line of uv's export as (canonical name, what should be installed); None: not checked."""
    from venvkeeper.core.names import canonicalize_name  # noqa: PLC0415

    path = requirement.removeprefix("-e ").strip()
    if path.startswith((".", "/")):
        # A path dependency that is not a workspace member: uv exports it by path, not by name.
        found = by_path.get(os.path.normpath(os.path.join(str(root), path)))
        if found is None:
            return None
        local = canonicalize_name(str(found["name"]))
        return local, _local_expectation(str(found.get("version") or ""), recorded.get(local), editable)
    name, version, url = _parse_requirement(requirement)
    if not name:
        return None
    key = canonicalize_name(name)
    candidates = locked.get(key, [])
    if not version and len(candidates) == 1:
        version = str(candidates[0].get("version") or "")
    entry = next((p for p in candidates if p.get("version") == version), candidates[0] if candidates else {})
    kind = _lock_source_kind(entry.get("source", {}))
    if kind == "local":
        return key, _local_expectation(version, recorded.get(key), editable)
    return key, Expected(version, kind, url if kind == "url" else None, False)


def _locked_paths(root: str, lock: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The lock's local packages by absolute path (their sources are relative to the workspace root)."""
    found: dict[str, Mapping[str, Any]] = {}
    for pkg in lock.get("package", []):
        source = pkg.get("source")
        for key in ("directory", "path", "editable") if isinstance(source, dict) else ():
            if isinstance(source.get(key), str):
                found[os.path.normpath(os.path.join(root, source[key]))] = pkg
    return found


def _local_expectation(locked: str, recorded: str | None, editable: bool | None) -> Expected:
    """A member or path dependency at its locked version; with a dynamic version, at its recorded one.

    uv.lock holds no version for a local package whose version is dynamic (``dynamic =
    ["version"]``: uv computes it when it builds), so the reference is what the generation
    recorded when deploy built it from this tree; with no record (a venv venvkeeper did not
    build) the version is not compared. A change of a member's source since is a
    ``source-changed`` finding of its own.
    """
    if locked:
        return Expected(locked, "local", None, editable)
    return Expected(recorded, "local", None, editable, "generation record" if recorded else None)


def _parse_requirement(text: str) -> tuple[str, str, str | None]:
    """``name==1.0`` or ``name @ url`` (uv export's two forms) -> (name, version, url)."""
    if " @ " in text:
        name, _, url = text.partition(" @ ")
        return name.strip(), "", url.strip()
    name, _, version = text.partition("==")
    return name.strip(), version.strip(), None


def _lock_source_kind(source: Mapping[str, Any]) -> str:
    if "registry" in source:
        return "registry"
    if "git" in source:
        return "vcs"
    if "url" in source:
        return "url"
    return "local"  # path, directory, editable, virtual


def _source_findings(
    workspace: Workspace, subject: Subject, sealed_sources: Mapping[str, Mapping[str, str]] | None
) -> tuple[list[Finding], list[Check]]:
    """Member sources against what the live generation was built from, and the git tree's state."""
    from venvkeeper.gateways import git as gitcmd  # noqa: PLC0415
    from venvkeeper.project.hashing import member_files, tree_digest, tree_entries  # noqa: PLC0415

    root = workspace.root
    found: list[Finding] = []
    checks: list[Check] = []
    state = subject.state if subject.kind != "venv" else None
    if state is None:
        checks.append(Check("source", "not-possible", "no record of what this environment was built from"))
    else:
        files = gitcmd.list_files(root)
        members = state.get("members", [])
        member_paths = [m["path"] for m in members]
        for member in members:
            if not member.get("package"):
                continue
            mine = member_files(files, member["path"], member_paths)
            sealed = (sealed_sources or {}).get(member["name"])
            if sealed is None:  # an older generation: its record has the member's digest only
                if tree_digest(root, mine) != member.get("sha256"):
                    found.append(
                        Finding(
                            "source-changed", member["name"], member["path"], member.get("sha256"), "changed"
                        )
                    )
                continue
            now = tree_entries(root, mine)
            for path in sorted(set(sealed) | set(now)):
                if sealed.get(path) != now.get(path):
                    was, isnow = sealed.get(path, "absent"), now.get(path, "deleted")
                    found.append(
                        Finding("source-changed", member["name"], path, was, isnow, "generation record")
                    )
        status = "findings" if found else "ok"
        checks.append(Check("source", status, "member sources against what the generation was built from"))
    if gitcmd.is_work_tree(root):
        dirty = [
            Finding("uncommitted", None, path, "committed", what, "git") for what, path in gitcmd.status(root)
        ]
        checks.append(
            Check("git", "findings" if dirty else "ok", f"{len(dirty)} uncommitted" if dirty else "clean")
        )
        found += dirty
    else:
        checks.append(Check("git", "not-possible", f"{root} is not a git work tree"))
    return found, checks


def verify(env: str, project: str | None = None, *, fast: bool = False) -> VerifyResult:
    started = time.monotonic()
    subject = resolve(env)
    expected = workspace = None
    if project is not None:
        found, workspace = _lock_expectations(project, subject)
        expected = (found, "lock")
    result = inspect(subject, fast=fast, expected=expected)
    if workspace is not None:
        sources = result.manifest.sources if result.manifest is not None else None
        found_sources, checks = _source_findings(workspace, subject, sources)
        result.findings += found_sources
        result.checks += checks
    return VerifyResult(
        env=env,
        directory=subject.directory,
        kind=subject.kind,
        generation=subject.generation,
        fast=fast,
        checks=result.checks,
        findings=result.findings,
        files=result.files,
        bytes_hashed=result.bytes_hashed,
        duration_s=time.monotonic() - started,
    )


def main(args: Sequence[str]) -> int | None:
    """``venvkeeper verify ARGS`` without click; None when the arguments need click's parser."""
    from venvkeeper.cli import argv  # noqa: PLC0415
    from venvkeeper.cli.render import report  # noqa: PLC0415

    parsed = argv.parse(args, values={"--env", "--project"}, flags={"--fast", "--json"})
    if parsed is None or "--env" not in parsed:
        return None
    env, project = str(parsed["--env"]), parsed.get("--project")
    action = lambda: verify(env, None if project is None else str(project), fast=bool(parsed.get("--fast")))  # noqa: E731
    return int(report("verify", bool(parsed.get("--json")), action))
