"""Real wheels for the hermetic index, written with :mod:`zipfile`.

Two sources: :func:`make_wheel` writes a fake third-party distribution from a dict of files,
and :func:`repack_installed` turns a distribution installed in the running interpreter back
into a wheel, which is how the build backends reach the local index without a registry.

Wheels are deterministic (fixed timestamps, sorted entries): the same inputs give the same
bytes, so the sha256 recorded in a ``uv.lock`` is stable from one session to the next.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import re
import sysconfig
import zipfile
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

__all__ = [
    "WheelError",
    "dist_info_name",
    "make_wheel",
    "repack_installed",
    "repack_with_requirements",
    "wheel_filename",
]

# The earliest date a zip file can hold; any fixed date makes the archive reproducible.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Installers write these into an installed .dist-info; they are not part of a wheel.
_INSTALLER_FILES = frozenset({"INSTALLER", "REQUESTED", "RECORD", "direct_url.json", "uv_cache.json"})


class WheelError(Exception):
    """A wheel could not be written from what was given."""


def _escape(component: str) -> str:
    """Escape a name or version for a wheel file name (binary distribution format spec)."""
    return re.sub(r"[-_.]+", "_", component).lower()


def dist_info_name(name: str, version: str) -> str:
    """``tiny_web-1.0.0.dist-info`` for ``tiny-web`` 1.0.0."""
    return f"{_escape(name)}-{Version(version)}.dist-info"


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{_escape(name)}-{Version(version)}-{tag}.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest}"


def _write_wheel(path: Path, dist_info: str, entries: Mapping[str, tuple[bytes, int]]) -> Path:
    """Write ``entries`` (archive name -> (content, unix mode)) plus a fresh RECORD."""
    record_name = f"{dist_info}/RECORD"
    payload = sorted(name for name in entries if not name.startswith(f"{dist_info}/"))
    metadata = sorted(name for name in entries if name.startswith(f"{dist_info}/") and name != record_name)
    record_lines = [f"{name},{_record_hash(entries[name][0])},{len(entries[name][0])}" for name in payload]
    record_lines += [f"{name},{_record_hash(entries[name][0])},{len(entries[name][0])}" for name in metadata]
    record_lines.append(f"{record_name},,")
    record = ("\n".join(record_lines) + "\n").encode()

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    # Level 1 deflate: the repacked backends hold a few MB and session setup must stay fast.
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in [*payload, *metadata]:
            data, mode = entries[name]
            archive.writestr(_zip_info(name, mode), data)
        archive.writestr(_zip_info(record_name, 0o644), record)
    partial.replace(path)
    return path


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | (mode & 0o777)) << 16
    return info


def _import_name(name: str) -> str:
    return re.sub(r"[-.]+", "_", name).lower()


def make_wheel(
    dest_dir: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, str | bytes] | None = None,
    requires: Iterable[str] = (),
    console_scripts: Mapping[str, str] | None = None,
    requires_python: str | None = None,
    tag: str = "py3-none-any",
    summary: str | None = None,
) -> Path:
    """Write ``<dest_dir>/<name>-<version>-<tag>.whl`` and return its path.

    Without ``files`` the wheel holds ``<import_name>/__init__.py`` with ``__version__``.
    ``requires`` are ``Requires-Dist`` lines (markers allowed); ``console_scripts`` maps a
    script name to ``module:function``.
    """
    requirements = [str(Requirement(line)) for line in requires]  # fail early on a typo
    if files is None:
        files = {f"{_import_name(name)}/__init__.py": f'__version__ = "{version}"\n'}
    dist_info = dist_info_name(name, version)

    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata.append(f"Summary: {summary or f'{name}, a fake distribution for the venvkeeper tests'}")
    if requires_python is not None:
        metadata.append(f"Requires-Python: {requires_python}")
    metadata += [f"Requires-Dist: {requirement}" for requirement in requirements]
    purelib = tag.endswith("-any")
    wheel = [
        "Wheel-Version: 1.0",
        "Generator: venvkeeper-tests",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
        f"Tag: {tag}",
    ]

    entries: dict[str, tuple[bytes, int]] = {}
    for relative, content in files.items():
        if relative.startswith(f"{dist_info}/"):
            raise WheelError(f"{relative}: make_wheel writes the .dist-info files itself")
        entries[relative] = (content.encode() if isinstance(content, str) else content, 0o644)
    entries[f"{dist_info}/METADATA"] = (("\n".join(metadata) + "\n\n").encode(), 0o644)
    entries[f"{dist_info}/WHEEL"] = (("\n".join(wheel) + "\n").encode(), 0o644)
    if console_scripts:
        lines = ["[console_scripts]", *(f"{script} = {target}" for script, target in console_scripts.items())]
        entries[f"{dist_info}/entry_points.txt"] = (("\n".join(lines) + "\n").encode(), 0o644)
    return _write_wheel(Path(dest_dir) / wheel_filename(name, version, tag), dist_info, entries)


def _archive_name(
    dist: importlib.metadata.Distribution, absolute: str, data_dir: str, generated_scripts: set[str]
) -> str | None:
    """Where an installed file goes in the wheel; None for what an installer generates."""
    site = os.path.normpath(str(dist.locate_file("")))
    if absolute.startswith(site + os.sep):
        return Path(os.path.relpath(absolute, site)).as_posix()
    scripts = os.path.normpath(sysconfig.get_path("scripts"))
    if os.path.dirname(absolute) == scripts:
        script = os.path.basename(absolute)
        # Console and GUI scripts are regenerated from entry_points.txt by the installer.
        return None if script in generated_scripts else f"{data_dir}/scripts/{script}"
    prefix = os.path.normpath(sysconfig.get_path("data"))
    if absolute.startswith(prefix + os.sep):
        return f"{data_dir}/data/{Path(os.path.relpath(absolute, prefix)).as_posix()}"
    raise WheelError(f"{absolute}: installed outside the environment, cannot repack {dist.metadata['Name']}")


def repack_installed(dist_name: str, dest_dir: Path) -> Path:
    """Turn ``dist_name``, installed in this interpreter, back into a wheel in ``dest_dir``.

    The files come from the installed RECORD (bytecode left out), the RECORD is written anew
    and the wheel keeps the installed tag (the first ``Tag:`` line of its WHEEL file).
    """
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise WheelError(
            f"{dist_name} is not installed in {sysconfig.get_path('purelib')}; the tests repack it"
            " for their local index: install the project's dev dependency group"
        ) from None
    name, version = dist.metadata["Name"], dist.version
    if dist.files is None:
        raise WheelError(f"{name} {version} has no RECORD; reinstall it with pip or uv")
    if json.loads(dist.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable"):
        raise WheelError(f"{name} {version} is an editable install; its files are not in site-packages")

    wheel_text = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel_text.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise WheelError(f"{name} {version}: its WHEEL file names no tag")
    tag = tags[0]
    # The file name carries one tag; the WHEEL file must not claim others.
    wheel_lines = [
        line
        for line in wheel_text.splitlines()
        if line.strip() and (not line.startswith("Tag:") or line.split(":", 1)[1].strip() == tag)
    ]

    dist_info = dist_info_name(name, version)
    data_dir = f"{_escape(name)}-{Version(version)}.data"
    generated = {ep.name for ep in dist.entry_points if ep.group in {"console_scripts", "gui_scripts"}}
    entries: dict[str, tuple[bytes, int]] = {}
    for packaged in dist.files:
        if "__pycache__" in packaged.parts or packaged.suffix == ".pyc":
            continue
        absolute = os.path.normpath(str(dist.locate_file(packaged)))
        archive_name = _archive_name(dist, absolute, data_dir, generated)
        if archive_name is None:
            continue
        if archive_name.split("/", 1)[0].endswith(".dist-info"):
            if archive_name.split("/", 1)[1] in _INSTALLER_FILES:
                continue
            # Installers may name the directory differently (case, escaping); a wheel uses this one.
            archive_name = f"{dist_info}/{archive_name.split('/', 1)[1]}"
        if not os.path.isfile(absolute):
            continue
        entries[archive_name] = (Path(absolute).read_bytes(), os.stat(absolute).st_mode)
    entries[f"{dist_info}/WHEEL"] = (("\n".join(wheel_lines) + "\n").encode(), 0o644)
    return _write_wheel(Path(dest_dir) / wheel_filename(name, version, tag), dist_info, entries)


def _applies(requirement: Requirement) -> bool:
    # Evaluated for this interpreter with no extra requested: that is what a build
    # frontend installs when a build-system requires the distribution.
    return requirement.marker is None or requirement.marker.evaluate({"extra": ""})


def repack_with_requirements(dist_names: Iterable[str], dest_dir: Path) -> list[Path]:
    """Repack each distribution and, transitively, the runtime requirements that apply here."""
    wheels: list[Path] = []
    seen: set[str] = set()
    queue = deque(dist_names)
    while queue:
        dist_name = queue.popleft()
        if canonicalize_name(dist_name) in seen:
            continue
        seen.add(canonicalize_name(dist_name))
        wheels.append(repack_installed(dist_name, dest_dir))
        for line in importlib.metadata.requires(dist_name) or []:
            requirement = Requirement(line)
            if _applies(requirement):
                queue.append(requirement.name)
    return wheels
