"""``venvkeeper verify``: prove an installed environment is what its lock says, file by file.

The environment against its generation's record and sealed manifest is
:mod:`venvkeeper.generations.inspection`'s work; with ``--project``, this module adds the project's
lock (through uv's export) as the reference, and the member sources and git state as findings of
their own. Nothing is written anywhere and no lock is taken.

The command is timed (100 ms on a 900-file environment, start-up included), so this path imports
neither click, pathlib, typing nor dataclasses; what ``--project`` needs is loaded when it is asked.
"""

from __future__ import annotations

import os
import time

from venvkeeper.core.errors import CannotVerifyError
from venvkeeper.core.lazy import lazy
from venvkeeper.core.names import canonicalize_name
from venvkeeper.generations.findings import Expected, Finding
from venvkeeper.generations.inspection import Check, Subject, inspect, resolve
from venvkeeper.sbom import sealed as sealed_sbom
from venvkeeper.verify.result import VerifyResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pathlib
    from collections.abc import Mapping
    from typing import Any

    from packaging import markers as packaging_markers

    from venvkeeper.gateways import git as gitcmd
    from venvkeeper.generations import engine, smoke
    from venvkeeper.project import hashing
    from venvkeeper.project import workspace as workspaces
    from venvkeeper.project.workspace import Workspace
    from venvkeeper.verify import receipt as receipts
else:
    receipts = lazy("venvkeeper.verify.receipt")  # --receipt only (cryptography, securesystemslib)
    # --project only.
    pathlib = lazy("pathlib")
    packaging_markers = lazy("packaging.markers")
    gitcmd = lazy("venvkeeper.gateways.git")
    engine = lazy("venvkeeper.generations.engine")
    smoke = lazy("venvkeeper.generations.smoke")
    hashing = lazy("venvkeeper.project.hashing")
    workspaces = lazy("venvkeeper.project.workspace")

__all__ = ["verify"]


def verify(
    env: str,
    project: str | None = None,
    *,
    fast: bool = False,
    receipt: pathlib.Path | None = None,
    public_key: pathlib.Path | None = None,
) -> VerifyResult:
    """``receipt`` (with ``public_key``): first check its signature, then that it names the live
    generation (:mod:`venvkeeper.verify.receipt`); its findings come first."""
    started = time.monotonic()
    signed: tuple[list[Finding], list[Check]] = ([], [])
    if receipt is not None:
        if public_key is None:
            raise CannotVerifyError("--receipt needs --public-key", hint="give the signer's public key")
        signed = receipts.check_receipt(env, receipt, public_key)
    subject = resolve(env)
    expected = workspace = None
    if project is not None:
        found, workspace = _lock_expectations(project, subject)
        expected = (found, "lock")
    result = inspect(subject, fast=fast, expected=expected)
    sbom, sbom_check = sealed_sbom.check(subject)  # beside the record, outside what inspect walks
    result.findings += [sbom] if sbom is not None else []
    result.checks.append(sbom_check)
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
        checks=signed[1] + result.checks,
        findings=signed[0] + result.findings,
        files=result.files,
        bytes_hashed=result.bytes_hashed,
        duration_s=time.monotonic() - started,
    )


# -- --project ---------------------------------------------------------------------------------


def _lock_expectations(project: str, subject: Subject) -> tuple[dict[str, Expected], Workspace]:
    """What the project's current lock installs for the recorded groups, on this interpreter."""
    workspace = workspaces.load_workspace(pathlib.Path(project))
    lock = workspaces.parse_lock(workspace)
    members = workspaces.load_lock_members(workspace, lock)
    state = subject.state if subject.kind != "venv" else None
    groups = tuple(state.get("options", {}).get("groups", ())) if state else workspace.config.groups
    markers = (state or {}).get("interpreter", {}).get("markers")
    markers = markers or smoke.marker_environment(pathlib.Path(subject.directory) / "bin" / "python")
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
    python = pathlib.Path(subject.directory) / "bin" / "python"
    for raw in engine.export_requirements(workspace.root, groups, python).splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or (line.startswith("-") and not line.startswith("-e ")):
            continue
        requirement, _, marker = line.partition(" ; ")
        if marker and not packaging_markers.Marker(marker).evaluate(markers):
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
            mine = hashing.member_files(files, member["path"], member_paths)
            sealed = (sealed_sources or {}).get(member["name"])
            if sealed is None:  # an older generation: its record has the member's digest only
                if hashing.tree_digest(root, mine) != member.get("sha256"):
                    found.append(
                        Finding(
                            "source-changed", member["name"], member["path"], member.get("sha256"), "changed"
                        )
                    )
                continue
            now = hashing.tree_entries(root, mine)
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
