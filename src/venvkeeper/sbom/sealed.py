"""A generation's SBOM file against the sha256 its record names: ``verify``'s ``sbom`` check, and what
``deploy --repair`` rewrites (``venvkeeper.deploy.repair``, from :func:`venvkeeper.sbom.generation.rebuilt`).

The file lives beside the record, outside the venv, so the file-by-file inspection of the venv never
sees it; a generation is only what its record says it is when its SBOM is too. On verify's timed
path: hashlib and os only (an SBOM is about 20 kB), cyclonedx-python-lib is never loaded here.
"""

from __future__ import annotations

import hashlib
import os

from venvkeeper.generations.findings import Finding
from venvkeeper.generations.inspection import Check, Subject, repair_command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CHECK", "check", "fix", "sbom_file"]

CHECK = "sbom"
_SUFFIX = ".sbom.cdx.json"  # generation.SUFFIX: that module loads pathlib and threading
_MANIFEST_SUFFIX = ".manifest.json"
_REFERENCE = "generation record"


def sbom_file(subject: Subject) -> str | None:
    """``generations/0003.sbom.cdx.json`` beside ``0003.manifest.json`` (``in-place.sbom.cdx.json``)."""
    manifest = subject.manifest_path
    if manifest is None or subject.kind == "venv" or not manifest.endswith(_MANIFEST_SUFFIX):
        return None
    return manifest.removesuffix(_MANIFEST_SUFFIX) + _SUFFIX


def fix(state: dict[str, Any] | None, path: str) -> str:
    """How the user gets the sealed bytes back. A generation installed from a bundle holds the bundle's
    own ``sbom.cdx.json``, which no rebuild reproduces (and ``deploy --repair`` would replace the app
    with a build of whatever project it runs in), so the fix is the bundle's copy."""
    state = state or {}
    bundle = (state.get("options") or {}).get("bundle") if state.get("kind") == "install" else None
    if bundle:
        command = f"venvkeeper sbom {bundle} -o {path}"
        return f"`{command}` writes back the copy the bundle carries (if you still have it)"
    return f"`{repair_command(state)}` rewrites it from the sealed manifest and the lock"


def check(subject: Subject) -> tuple[Finding | None, Check]:
    """The SBOM file of the generation behind ``subject`` against its record's ``sbom_sha256``.

    Missing or different is a finding. A record without ``sbom_sha256`` (a generation made before
    venvkeeper wrote SBOMs, or installed from a bundle that carried none) has nothing to hold the file
    to: not a finding, and ``sbom --env`` builds one from the manifest."""
    state: dict[str, Any] = subject.state or {}
    path = sbom_file(subject)
    if path is None:
        return None, Check(CHECK, "not-possible", subject.why_no_manifest or "no generation record")
    recorded = state.get("sbom_sha256")
    if not recorded:
        reason = "its record names no SBOM (made before venvkeeper wrote them): `venvkeeper sbom` builds one"
        return None, Check(CHECK, "not-possible", reason)
    how = fix(state, path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        found = Finding(CHECK, None, path, f"sha256:{recorded}", "missing", _REFERENCE)
    except OSError as exc:
        return None, Check(CHECK, "not-possible", f"{path}: cannot be read: {exc.strerror}")
    else:
        actual = hashlib.sha256(raw).hexdigest()
        if actual == recorded:
            return None, Check(CHECK, "ok", f"{os.path.basename(path)}: the sha256 its record names")
        differs = f"sha256:{actual} ({len(raw)} bytes)"
        found = Finding(CHECK, None, path, f"sha256:{recorded}", differs, _REFERENCE)
    found.fix = how
    return found, Check(CHECK, "findings", f"{os.path.basename(path)} against its record's sbom_sha256")
