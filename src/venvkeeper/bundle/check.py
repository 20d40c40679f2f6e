"""What install accepts in a bundle's ``manifest.json`` and ``pylock.toml``: decided here, pure.

A bundle is input. An unsigned one may come from anywhere, and a signature says only who packed
it, so every field install or the executable acts on is checked for its type and its bounds, and
every file the ``pylock.toml`` sends uv to must be one of the bundle's own wheels, listed in its
manifest: a path outside the bundle, a URL, a directory or a VCS checkout would install what the
manifest's hashes never covered (and ``verify`` would then call it clean).

Parsing is bounded before it starts: :mod:`json` recurses once per nesting level and raises
RecursionError past the interpreter's limit, and ``int()`` raises ValueError past 4300 digits
(CPython's int-string limit, gh-95778), so the nesting depth and the digits of a number are
checked first. Each problem is a :class:`Malformed` naming the field; :mod:`archive` turns it into
one error line naming the bundle.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_HOOK_TIMEOUT",
    "Malformed",
    "ManifestFields",
    "check_manifest",
    "check_pylock",
    "check_sbom",
    "parse_json",
    "show",
]

# pack writes 4 levels ({"files": [{...}]}); room for fields a later format version adds.
MAX_DEPTH = 32
# A size is under 2**35; 20 digits hold any 64-bit integer.
_MAX_DIGITS = 20
# A year: far above any real hook, far below what time arithmetic and poll() overflow on.
MAX_HOOK_TIMEOUT = 365 * 24 * 3600
_MAX_TEXT = 256  # a name, a version, a tag, a group
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # git's SHA-1 or SHA-256 object names
_PYTHON = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")
_IMPLEMENTATION = re.compile(r"[a-z]{1,16}")
_PLATFORM = re.compile(r"[A-Za-z0-9_.]{1,200}")  # manylinux_2_17_x86_64, macosx_11_0_arm64, any
# A JSON string, then any bracket outside one: enough to measure nesting without parsing.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class Malformed(Exception):  # noqa: N818 - a condition of the input, not an error of ours
    """One line: the field and what is wrong with it (and, rarely, a hint of its own)."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class ManifestFields:
    """The manifest's fields as install and the executable use them, every one checked."""

    project_name: str
    project_version: str
    python: str  # the target's major.minor
    implementation: str  # "cp"
    platforms: tuple[str, ...]  # empty: any platform
    groups: tuple[str, ...]
    members: tuple[str, ...]  # wheel file names, each a file wheels/<name> of the bundle
    post_deploy: tuple[str, ...]
    hook_timeout: float
    lock_sha256: str | None


# -- parsing -----------------------------------------------------------------------------------


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON, refusing what :func:`json.loads` would crash on or silently accept.

    Refused: bytes that are not UTF-8 (json would guess UTF-16 or 32), nesting deeper than
    MAX_DEPTH, a number of more than 20 digits, NaN and Infinity, and a key given twice.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    depth = 0
    for bracket in _BRACKETS.finditer(_JSON_STRING.sub(b"", raw)):
        depth += 1 if bracket[0] in b"[{" else -1
        if depth > MAX_DEPTH:
            raise Malformed(f"is nested more than {MAX_DEPTH} deep")
    try:
        return json.loads(
            text,
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=_json_constant,
            object_pairs_hook=_json_object,
        )
    except ValueError as exc:  # json.JSONDecodeError is one
        raise Malformed(f"is not valid JSON ({exc})") from None


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise Malformed(f"has a number of {len(text.lstrip('-'))} digits (at most {_MAX_DIGITS})")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Malformed(f"has a number too large for a float ({_clip(text)})")
    return value


def _json_constant(text: str) -> Any:
    raise Malformed(f"has {text}, which JSON does not allow")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Malformed(f"has the key {_clip(key)} twice in one object")
        result[key] = value
    return result


def _parse_toml(raw: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Malformed(f"is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        # tomllib is pure Python and recurses once per nested array or inline table: the
        # RecursionError unwinds cleanly, and a lock nested this deep is no lock pack wrote.
        raise Malformed("is nested too deep to read") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, and int() past its digit limit
        raise Malformed(f"is not valid TOML ({exc})") from None


# -- showing a value in one line ---------------------------------------------------------------


def _clip(text: str, limit: int = 60) -> str:
    """A string as repr shows it (escapes included, so one line), cut to ``limit`` characters."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def show(value: Any) -> str:
    """A JSON or TOML value in a few words, on one line, whatever its size."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)  # null, true, false
    if isinstance(value, int):
        return f"the number {value}" if value.bit_length() <= 64 else "a very large number"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {_clip(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__}"  # or TOML's dates


def _bad(path: str, value: Any, wanted: str) -> Malformed:
    return Malformed(f"{path}: is {show(value)}, not {wanted}")


# -- manifest.json -----------------------------------------------------------------------------


def _object(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """``parent[key]``, an object; {} when absent."""
    value = parent.get(key, {})
    if not isinstance(value, dict):
        raise _bad(path, value, "an object")
    return value


def _text(value: Any, path: str, *, pattern: re.Pattern[str] | None = None, wanted: str = "a name") -> str:
    """A printable string (so it prints as one line) of at most _MAX_TEXT characters."""
    ok = isinstance(value, str) and len(value) <= _MAX_TEXT and value.isprintable()
    if not ok or (pattern is not None and not pattern.fullmatch(value)):
        raise _bad(path, value, wanted)
    return str(value)


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(path, value, "a list")
    return value


def _command(value: Any, path: str) -> str:
    """A hook's shell command: any text the shell can be given (no NUL, no lone surrogate)."""
    ok = isinstance(value, str) and value.strip() and "\0" not in value
    if ok:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            ok = False
    if not ok:
        raise _bad(path, value, "a shell command")
    return str(value)


def check_manifest(manifest: Mapping[str, Any], files: Mapping[str, tuple[int, str]]) -> ManifestFields:
    """Every field of a parsed manifest whose ``files`` (``files``: {path: (size, sha256)}) were
    checked already; keys pack never writes are ignored, for a later version's optional fields."""
    project = _object(manifest, "project", "project")
    target = manifest.get("target")
    if not isinstance(target, dict):
        raise _bad("target", target, "an object")
    hooks = _object(manifest, "hooks", "hooks")
    built_from = _object(manifest, "built_from", "built_from")

    members = _members(manifest, files)
    timeout = hooks.get("timeout", 900)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_HOOK_TIMEOUT
    ):
        raise _bad("hooks.timeout", timeout, f"a number of seconds over 0 and at most {MAX_HOOK_TIMEOUT}")
    _check_built_by(built_from)
    if not isinstance(target.get("abi3", False), bool):
        raise _bad("target.abi3", target["abi3"], "true or false")
    lock_sha256 = built_from.get("lock_sha256")
    if lock_sha256 is not None:
        _text(lock_sha256, "built_from.lock_sha256", pattern=_SHA256, wanted="a sha256 in hex")
    return ManifestFields(
        project_name=_text(project.get("name", ""), "project.name"),
        project_version=_text(project.get("version", ""), "project.version", wanted="a version"),
        python=_text(target.get("python"), "target.python", pattern=_PYTHON, wanted="a Python X.Y"),
        implementation=_text(
            target.get("implementation", "cp"),
            "target.implementation",
            pattern=_IMPLEMENTATION,
            wanted="an implementation (cp)",
        ),
        platforms=tuple(
            _text(tag, f"target.platforms[{i}]", pattern=_PLATFORM, wanted="a platform tag")
            for i, tag in enumerate(_list(target.get("platforms", []), "target.platforms"))
        ),
        groups=tuple(
            _text(group, f"groups[{i}]", wanted="a dependency group's name")
            for i, group in enumerate(_list(manifest.get("groups", []), "groups"))
        ),
        members=tuple(members),
        post_deploy=tuple(
            _command(command, f"hooks.post-deploy[{i}]")
            for i, command in enumerate(_list(hooks.get("post-deploy", []), "hooks.post-deploy"))
        ),
        hook_timeout=float(timeout),
        lock_sha256=lock_sha256,
    )


def _members(manifest: Mapping[str, Any], files: Mapping[str, tuple[int, str]]) -> list[str]:
    """The members' wheel file names, each a file ``wheels/<name>`` of the bundle."""
    members = []
    for i, member in enumerate(_list(manifest.get("members", []), "members")):
        name = _text(member, f"members[{i}]", wanted="a wheel file name")
        if "/" in name or f"wheels/{name}" not in files:
            raise Malformed(f"members[{i}]: {_clip(name)} is not a file in the bundle's wheels/")
        members.append(name)
    return members


def _check_built_by(built_from: Mapping[str, Any]) -> None:
    """The commit and the tool versions the manifest says the bundle was built by, when it names them."""
    if built_from.get("git_commit") is not None:
        _text(
            built_from["git_commit"], "built_from.git_commit", pattern=_COMMIT, wanted="a git commit in hex"
        )
    for key in ("venvkeeper", "uv"):
        if built_from.get(key) is not None:
            _text(built_from[key], f"built_from.{key}", wanted="a version")


# -- pylock.toml -------------------------------------------------------------------------------

# PEP 751's sources of a package: only files (a wheel, an sdist, an archive) can be the bundle's.
_NOT_FILES = {"vcs": "a VCS checkout", "directory": "a local directory"}


def check_sbom(raw: bytes) -> None:
    """The bundle's ``sbom.cdx.json`` is a CycloneDX JSON document: ``sbom BUNDLE`` prints it and
    install keeps it as the generation's, so neither hands on something else under that name."""
    document = parse_json(raw)
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise Malformed('is not a CycloneDX JSON document (no "bomFormat": "CycloneDX")')


def check_pylock(raw: bytes, files: Mapping[str, tuple[int, str]]) -> None:
    """Every artifact of the bundle's ``pylock.toml`` is a file of the bundle's ``wheels/``, by the
    exact path its manifest lists (``files``: {path: (size, sha256)}), with that file's sha256."""
    lock = _parse_toml(raw)
    packages = lock.get("packages", [])
    if not isinstance(packages, list):
        raise _bad("packages", packages, "a list of tables")
    for i, package in enumerate(packages):
        where = f"packages[{i}]"
        if not isinstance(package, dict):
            raise _bad(where, package, "a table")
        if isinstance(package.get("name"), str):
            where += f" ({_clip(package['name'])})"
        for key, what in _NOT_FILES.items():
            if key in package:
                raise Malformed(f"{where}.{key}: {what} is not a file in the bundle")
        artifacts: list[tuple[str, Any]] = [
            (key, package[key]) for key in ("archive", "sdist") if key in package
        ]
        if "wheels" in package:
            wheels = package["wheels"]
            if not isinstance(wheels, list):
                raise _bad(f"{where}.wheels", wheels, "a list of tables")
            artifacts += [(f"wheels[{j}]", wheel) for j, wheel in enumerate(wheels)]
        if not artifacts:
            raise Malformed(f"{where}: names no wheel, sdist or archive of the bundle")
        for key, artifact in artifacts:
            _check_artifact(f"{where}.{key}", artifact, files)


def _check_artifact(where: str, artifact: Any, files: Mapping[str, tuple[int, str]]) -> None:
    if not isinstance(artifact, dict):
        raise _bad(where, artifact, "a table")
    if "url" in artifact:
        url = artifact["url"]
        shown = _clip(url) if isinstance(url, str) else show(url)
        raise Malformed(f"{where}.url: {shown}: a URL is not a file in the bundle")
    path = artifact.get("path")
    if not isinstance(path, str):
        raise _bad(f"{where}.path", path, "a path")
    if not path.startswith("wheels/") or path not in files:
        raise Malformed(
            f"{where}.path: {_clip(path)} is not a file in the bundle's wheels/ listed in its manifest"
        )
    size, sha256 = files[path]
    name = artifact.get("name", path.rpartition("/")[2])
    if name != path.rpartition("/")[2]:
        raise _bad(f"{where}.name", name, f"the name of its path, {_clip(path.rpartition('/')[2])}")
    if "size" in artifact and (type(artifact["size"]) is not int or artifact["size"] != size):
        raise _bad(f"{where}.size", artifact["size"], f"the manifest's {size} for {path}")
    hashes = artifact.get("hashes")
    if not isinstance(hashes, dict) or hashes.get("sha256") != sha256:
        found = hashes.get("sha256") if isinstance(hashes, dict) else hashes
        raise _bad(f"{where}.hashes.sha256", found, f"the manifest's {sha256} for {path}")
