"""``venvkeeper verify --env PATH --lock pylock.toml``: an environment proved against a PEP 751 lock.

The lock is selected for the environment's own interpreter (:mod:`venvkeeper.project.pylock`); the
distributions installed are compared with it (a missing, extra or other-version distribution is a
finding) and every file against its RECORD (:func:`venvkeeper.generations.inspection.inspect`).
Then each installed distribution is proved to come from the very wheel the lock names: the wheel
(a local file, or fetched into the download cache, checked against the lock's sha256 first) lists
each file's hash in its own RECORD, and each installed file must hash to it. A file edited and its
installed RECORD edited to match, or the same version installed from another wheel, is drift.
Nothing is written into the environment.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from venvkeeper.core.envscan import Distribution, read_distributions, walk
from venvkeeper.core.errors import CannotVerifyError, VenvkeeperError
from venvkeeper.generations import smoke
from venvkeeper.generations.findings import Expected, Finding
from venvkeeper.generations.inspection import Check, inspect, resolve
from venvkeeper.project import pylock as locks
from venvkeeper.project import wheeltags
from venvkeeper.sbom import sealed as sealed_sbom
from venvkeeper.verify.result import VerifyResult

__all__ = ["verify_lock"]

Fetch = Callable[[Sequence[locks.LockedWheel], Path], Mapping[str, Path]]
# Written or rewritten by the installer, so never the wheel's bytes (scripts get this interpreter's
# shebang; RECORD, INSTALLER, REQUESTED and direct_url.json are the installer's own).
_INSTALLER_FILES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")


def verify_lock(env: str, lock_path: Path, fetch: Fetch, *, fast: bool = False) -> VerifyResult:
    started = time.monotonic()
    subject = resolve(env)
    python = Path(subject.directory) / "bin" / "python"
    found = smoke.interpreter_facts(python)  # its markers and its own wheel tags' facts, in one run
    if found is None:
        raise CannotVerifyError(f"{python}: does not run", hint="`venvkeeper doctor --env` says why")
    markers, facts = found
    lock = locks.load(lock_path)
    wheels = locks.select(lock_path, lock, markers, wheeltags.tags_for(wheeltags.TagFacts.from_json(facts)))
    reference = lock_path.name
    expected = {w.name: Expected(w.version, "", None, None) for w in wheels}
    result = inspect(subject, fast=fast, expected=(expected, reference))
    findings, checks = result.findings, result.checks
    sbom, sbom_check = sealed_sbom.check(subject)  # a generation's SBOM, beside its record
    findings += [sbom] if sbom is not None else []
    checks.append(sbom_check)
    if not fast:
        dists = {d.name: d for d in read_distributions(subject.directory, walk(subject.directory))}
        same = [w for w in wheels if (d := dists.get(w.name)) is not None and d.version == w.version]
        try:
            files = fetch(same, lock_path)
        except VenvkeeperError as exc:  # a wheel unreachable or not the locked one: nothing to prove against
            raise CannotVerifyError(exc.message, hint=exc.hint) from None
        drift = [f for w in same for f in _against_wheel(subject.directory, dists[w.name], files[w.filename])]
        findings += _merged(findings, drift)
        what = f"{len(same)} installed distributions against their locked wheels' RECORD"
        checks.append(Check("wheels", "findings" if drift else "ok", what))
    return VerifyResult(
        env=env,
        directory=subject.directory,
        kind=subject.kind,
        generation=subject.generation,
        fast=fast,
        checks=checks,
        findings=findings,
        files=result.files,
        bytes_hashed=result.bytes_hashed,
        duration_s=time.monotonic() - started,
    )


def _merged(found: list[Finding], drift: list[Finding]) -> list[Finding]:
    """The wheel's findings not already made (the same file, the same way) against the manifest or
    RECORD: those name the wheel as one more reference, so one cause is reported once."""
    by_file = {(f.category, f.path): f for f in found}
    new: list[Finding] = []
    for finding in drift:
        same = by_file.get((finding.category, finding.path))
        if same is not None and same.actual and finding.actual and finding.actual in same.actual:
            same.reference = f"{same.reference}, {finding.reference}" if same.reference else finding.reference
        else:
            new.append(finding)
    return new


def _wheel_record(wheel: Path) -> dict[str, str]:
    """The wheel's RECORD: each file's path in the wheel -> its sha256 (hex)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            name = next(
                n for n in archive.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1
            )
            text = archive.read(name).decode("utf-8")
    except (OSError, zipfile.BadZipFile, StopIteration, UnicodeDecodeError) as exc:
        raise CannotVerifyError(f"{wheel}: not a readable wheel: {exc}", hint="lock it again") from None
    found: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) > 1 and row[1].startswith("sha256="):
            raw = row[1].removeprefix("sha256=")
            found[row[0]] = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex()
    return found


def _installed_path(site: str, path: str) -> str | None:
    """Where a wheel's file lands (relative to the environment), or None for one the installer
    moves or rewrites (scripts, headers, data, the installer's own dist-info files)."""
    top, _, rest = path.partition("/")
    if top.endswith(".data"):
        kind, _, inner = rest.partition("/")
        return f"{site}/{inner}" if kind in ("purelib", "platlib") else None
    if top.endswith(".dist-info") and rest in _INSTALLER_FILES:
        return None
    return f"{site}/{path}"


def _against_wheel(root: str, dist: Distribution, wheel: Path) -> list[Finding]:
    """Each file the locked wheel installs, as it is on disk now, against the wheel's RECORD."""
    site = dist.dist_info.rsplit("/", 1)[0]
    found: list[Finding] = []
    for path, want in sorted(_wheel_record(wheel).items()):
        installed = _installed_path(site, path)
        if installed is None:
            continue
        try:
            with open(os.path.join(root, installed), "rb") as fh:
                actual = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError:
            found.append(Finding("missing-file", dist.name, installed, want, None, f"wheel {wheel.name}"))
            continue
        if actual != want:
            found.append(Finding("modified", dist.name, installed, want, actual, f"wheel {wheel.name}"))
    return found
