"""Members whose version is computed at build time, from git or from an unpacked sdist's PKG-INFO.

setuptools-scm, hatch-vcs (setuptools-scm behind hatchling) and uv-dynamic-versioning (dunamai)
ask git for the nearest tag, the distance from it, the commit id and whether the tree is dirty.
A build from the staging copy gives the version a build in the source gives only when the copy
answers git the same way (:mod:`venvkeeper.project.staging`), and a cached wheel is the right one only when
none of those answers changed: :func:`version_inputs` is what the member's cache key adds.

Without git the plugins read the version an sdist carries: setuptools-scm from ``PKG-INFO`` (its
fallback), hatchling from ``PKG-INFO`` for every dynamic field before any version source runs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from venvkeeper.core.lazy import lazy
from venvkeeper.core.names import canonicalize_name
from venvkeeper.gateways import git as gitcmd

# A dirty tree's version carries the day: datetime is read only then.
if TYPE_CHECKING:
    import datetime
else:
    datetime = lazy("datetime")

__all__ = [
    "DynamicVersion",
    "dynamic_versions",
    "explain_failure",
    "version_inputs",
    "workspace_members",
]

PLUGINS = ("setuptools-scm", "hatch-vcs", "uv-dynamic-versioning")

# Variables that change the version a plugin computes (its documented overrides) or its date part.
_ENV_PREFIXES = ("SETUPTOOLS_SCM_", "VCS_VERSIONING_", "UV_DYNAMIC_VERSIONING_", "SOURCE_DATE_EPOCH")


@dataclass(frozen=True)
class DynamicVersion:
    member: str  # canonical name
    path: str  # relative to the workspace root
    plugin: str | None  # one of PLUGINS, None for another dynamic-version source


def _plugin(pyproject: Mapping[str, Any]) -> str | None:
    requires = pyproject.get("build-system", {}).get("requires", [])
    names = set()
    for requirement in requires if isinstance(requires, list) else []:
        if isinstance(requirement, str):
            head = requirement.split(";", 1)[0]
            for stop in "<>=!~[ @(":
                head = head.split(stop, 1)[0]
            names.add(canonicalize_name(head.strip()))
    tool = pyproject.get("tool", {})
    source = tool.get("hatch", {}).get("version", {}).get("source")
    if "uv-dynamic-versioning" in names or source == "uv-dynamic-versioning":
        return "uv-dynamic-versioning"
    if "hatch-vcs" in names or source == "vcs":
        return "hatch-vcs"
    if "setuptools-scm" in names or "setuptools_scm" in tool:
        return "setuptools-scm"
    return None


def dynamic_versions(root: Path, members: Iterable[tuple[str, str]]) -> list[DynamicVersion]:
    """The (name, path) members whose ``[project] dynamic`` lists ``version``.

    The bytes are searched first: most pyproject files never say "dynamic", and TOML parsing is
    the expensive part of this check (it runs on every deploy).
    """
    found = []
    for name, path in members:
        try:
            raw = (root / path / "pyproject.toml").read_bytes()
        except OSError:
            continue
        if b"dynamic" not in raw:
            continue
        try:
            pyproject = tomllib.loads(raw.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue  # uv says what is wrong with it
        dynamic = pyproject.get("project", {}).get("dynamic", [])
        if isinstance(dynamic, list) and "version" in dynamic:
            plugin = _plugin(pyproject)
            if plugin is None and _from_a_file(pyproject):
                continue  # a version written in the sources: their hash already covers it
            found.append(DynamicVersion(name, path, plugin))
    return found


def _from_a_file(pyproject: Mapping[str, Any]) -> bool:
    """The version is read from a file of the member (flit's ``__version__``, hatch's ``path``,
    setuptools' ``attr:``/``file:``, pdm's ``source = "file"``), so neither git nor the day can
    change it. Another dynamic source (an unknown plugin) is treated as one that may ask git."""
    backend = pyproject.get("build-system", {}).get("build-backend", "")
    tool = pyproject.get("tool", {})
    hatch = tool.get("hatch", {}).get("version", {})
    setuptools = tool.get("setuptools", {}).get("dynamic", {}).get("version", {})
    pdm = tool.get("pdm", {}).get("version", {})
    return bool(
        (isinstance(backend, str) and backend.startswith("flit_core"))
        or (isinstance(hatch, dict) and "path" in hatch and hatch.get("source", "regex") in ("regex", "code"))
        or (isinstance(setuptools, dict) and ("attr" in setuptools or "file" in setuptools))
        or (isinstance(pdm, dict) and pdm.get("source") == "file")
    )


def workspace_members(root: Path) -> list[tuple[str, str]]:
    """(name, path) of the workspace's local packages as uv.lock names them (on a failure path only)."""
    try:
        lock = tomllib.loads((root / "uv.lock").read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []
    found = []
    for package in lock.get("package", []):
        source = package.get("source", {}) if isinstance(package, dict) else {}
        for kind in ("editable", "directory", "virtual"):
            if isinstance(source, dict) and isinstance(source.get(kind), str):
                found.append((canonicalize_name(str(package.get("name", ""))), source[kind]))
    return found


def version_inputs(root: Path, dynamic: Sequence[DynamicVersion], *, in_git: bool) -> dict[str, Any]:
    """What a version computed at build time depends on beyond the member's files.

    In git: HEAD, its branch, the tags and whether tracked files have uncommitted changes (with
    the day when they do: setuptools-scm's default local version of a dirty tree carries the date,
    ``+g<id>.d<YYYYMMDD>``). Outside git, each member's PKG-INFO. In both, the plugins' override
    variables.
    """
    inputs: dict[str, Any] = {
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENV_PREFIXES)},
    }
    if not in_git:
        # A PKG-INFO that .gitignore leaves out of the member's files still sets the version.
        inputs["pkg_info"] = {d.member: _read(root / d.path / "PKG-INFO") for d in dynamic}
    else:
        state = gitcmd.version_state(root)
        if state["dirty"]:
            state["day"] = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
        inputs["git"] = state
    return inputs


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _pretend_variable(member: str) -> str:
    return "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_" + "".join(c if c.isalnum() else "_" for c in member.upper())


# What each plugin prints when it finds neither git nor PKG-INFO.
_NO_VERSION = (
    "unable to detect version",  # setuptools-scm, hatch-vcs (setuptools-scm's LookupError)
    "does not appear to be a git project",  # dunamai (uv-dynamic-versioning)
)


def explain_failure(output: str, candidates: Sequence[DynamicVersion]) -> tuple[str, str] | None:
    """(message, hint) when ``output`` (uv's, with the backend's) shows a plugin that found no version.

    None when it shows something else: that failure is reported as it is.
    """
    lowered = output.lower()
    if not candidates or not any(marker in lowered for marker in _NO_VERSION):
        return None
    named = [c for c in candidates if c.member in lowered or c.member.replace("-", "_") in lowered]
    which = (named or list(candidates))[0]
    plugin = which.plugin or next((p for p in PLUGINS if p in lowered), None) or "its version plugin"
    message = (
        f"member {which.member} ({which.path}/): {plugin} cannot compute its version: "
        "no git repository with a commit to read it from, and no PKG-INFO"
    )
    if plugin == "uv-dynamic-versioning":
        hint = (
            "deploy from a git checkout with its tags, or set UV_DYNAMIC_VERSIONING_BYPASS=X.Y.Z "
            "(or fallback-version in [tool.uv-dynamic-versioning])"
        )
    elif plugin == "hatch-vcs":
        # hatch-vcs gives setuptools-scm no distribution name: only the generic variable applies.
        hint = (
            "deploy from a git checkout with its tags, or set SETUPTOOLS_SCM_PRETEND_VERSION=X.Y.Z "
            "(or fallback-version in [tool.hatch.version])"
        )
    elif plugin == "setuptools-scm":
        hint = (
            f"deploy from a git checkout with its tags, or set {_pretend_variable(which.member)}=X.Y.Z "
            "(or SETUPTOOLS_SCM_PRETEND_VERSION)"
        )
    else:
        hint = "deploy from a git checkout with its tags, or an unpacked sdist (with PKG-INFO)"
    return message, hint
