"""A bundle's ``pylock.toml`` (PEP 751): exactly the bundled files, by relative path and sha256.

Written by hand rather than with a TOML library (venvkeeper reads TOML with tomllib and writes
none elsewhere): every value is a string, an integer or a table of them, and a basic string is
escaped with ``json.dumps``, whose escapes are TOML's. The output is deterministic: packages by
name and version, files by name, keys in the order PEP 751 lists them.

A wheel that ``pack`` built from a locked sdist is listed among the package's ``wheels`` (it is the
file the bundle holds, by path and sha256) with no ``upload-time`` (no index ever served it), and
the sdist it came from is named in the package's ``[tool.venvkeeper]`` table (PEP 751's place for
what a tool adds): ``built-from-sdist = { name, hashes }``, the file and sha256 uv.lock pinned. The
sdist itself is not bundled, so no ``sdist`` key sends an installer looking for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from venvkeeper.bundle.locked import Artifact

__all__ = ["pylock_for"]


def _string(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, but TOML also wants DEL escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _file(artifact: Artifact, path: str) -> str:
    fields = [f"name = {_string(artifact.filename)}", f"path = {_string(path)}"]
    if artifact.size is not None:
        fields.append(f"size = {artifact.size}")
    fields.append(f"hashes = {{ sha256 = {_string(artifact.sha256)} }}")
    return "{ " + ", ".join(fields) + " }"


def pylock_for(
    artifacts: Iterable[Artifact],
    paths_in_bundle: Mapping[str, str],
    *,
    requires_python: str | None,
    environments: Sequence[str] | None = None,
    created_by: str = "venvkeeper",
) -> str:
    """The text of a ``pylock.toml`` that installs exactly ``artifacts`` from ``paths_in_bundle``.

    ``paths_in_bundle`` maps each file name to its path relative to the pylock.toml (``wheels/x.whl``);
    a file with no path there is an error, so a bundle's lock never sends an installer to the network.
    Third-party wheels and the members' built wheels are listed alike, by path and sha256.
    ``environments`` are PEP 508 markers the lock is meant for (the target's).
    """
    packages: dict[tuple[str, str], dict[str, list[Artifact]]] = {}
    files: set[str] = set()
    for artifact in artifacts:
        if artifact.filename in files:
            raise ValueError(f"{artifact.filename}: given twice")
        if artifact.filename not in paths_in_bundle:
            raise ValueError(f"{artifact.filename}: no path in the bundle")
        files.add(artifact.filename)
        kinds = packages.setdefault((artifact.name, artifact.version), {"wheel": [], "sdist": []})
        kinds[artifact.kind].append(artifact)

    lines = ['lock-version = "1.0"']
    if environments:
        lines.append(f"environments = [{', '.join(_string(marker) for marker in environments)}]")
    if requires_python:
        lines.append(f"requires-python = {_string(requires_python)}")
    lines.append(f"created-by = {_string(created_by)}")
    if not packages:
        lines.append("packages = []")  # required, even when empty
    for (name, version), kinds in sorted(packages.items()):
        lines += ["", "[[packages]]", f"name = {_string(name)}", f"version = {_string(version)}"]
        sdists = sorted(kinds["sdist"], key=lambda a: a.filename)
        if len(sdists) > 1:
            raise ValueError(
                f"{name} {version}: more than one sdist ({', '.join(a.filename for a in sdists)})"
            )
        if sdists:
            lines.append(f"sdist = {_file(sdists[0], paths_in_bundle[sdists[0].filename])}")
        if kinds["wheel"]:
            lines.append("wheels = [")
            lines += (
                f"    {_file(wheel, paths_in_bundle[wheel.filename])},"
                for wheel in sorted(kinds["wheel"], key=lambda a: a.filename)
            )
            lines.append("]")
        built = {w.built_from.filename: w.built_from for w in kinds["wheel"] if w.built_from is not None}
        if len(built) > 1:
            raise ValueError(f"{name} {version}: built from more than one sdist ({', '.join(sorted(built))})")
        for source in built.values():
            digest = f"hashes = {{ sha256 = {_string(source.sha256)} }}"
            origin = f"{{ name = {_string(source.filename)}, {digest} }}"
            lines.append(f"tool = {{ venvkeeper = {{ built-from-sdist = {origin} }} }}")
    return "\n".join(lines) + "\n"
