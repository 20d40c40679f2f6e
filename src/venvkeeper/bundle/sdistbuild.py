"""Locked sdists built into wheels for a bundle: a package published only as source still packs.

``pack`` bundles wheels only (the target installs offline, with no build backend). For a package
uv.lock pins as an sdist alone, the sdist is fetched like a wheel (:mod:`fetch`: checked against
the lock's sha256, through the download cache), unpacked into pack's scratch directory (outside
the project and its staging copy) and built there by uv, isolated, with ``SOURCE_DATE_EPOCH``; the
wheel is then normalised like the members' wheels (:func:`venvkeeper.generations.wheels.normalize`), so the
same lock packs to the same bytes.

What was built here runs where it was built: a pure wheel (``*-none-any``) runs on every target,
a compiled one only on this platform with the target's Python. A compiled wheel for any other
target is refused, naming the package and the target.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from venvkeeper.bundle.archive import BundleError
from venvkeeper.bundle.locked import Artifact
from venvkeeper.bundle.target import Target
from venvkeeper.core import progress
from venvkeeper.core.names import canonicalize_name
from venvkeeper.generations import engine
from venvkeeper.generations.wheels import normalize

__all__ = ["build_sdists", "unpack"]


def _label(sdist: Artifact) -> str:
    return f"{sdist.name} {sdist.version} ({sdist.filename})"


def unpack(archive: Path, into: Path, label: str) -> Path:
    """Unpack an sdist (``.tar.gz`` and the other tar forms, or a legacy ``.zip``) into ``into``;
    its one top-level directory, which holds the source tree.

    tarfile's ``data`` filter (PEP 706) refuses absolute paths, ``..``, links out of the tree and
    device files; a zip's names are checked the same way by hand.
    """
    into.mkdir(parents=True)
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    path = PurePosixPath(name)
                    if path.is_absolute() or ".." in path.parts or "\\" in name:
                        raise BundleError(
                            f"{label}: the sdist holds {name!r}, a path outside its own tree",
                            hint="this sdist is not safe to build; lock another version",
                        )
                zf.extractall(into)  # noqa: S202  # every name was checked above
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise BundleError(
            f"{label}: cannot unpack the sdist: {exc}",
            hint="the download cache holds the file uv.lock names; the archive itself is damaged or "
            "not an sdist",
        ) from exc
    tops = [path for path in into.iterdir() if path.is_dir()]
    if len(tops) != 1 or not ((tops[0] / "pyproject.toml").is_file() or (tops[0] / "setup.py").is_file()):
        raise BundleError(
            f"{label}: not an sdist (no single top-level directory with pyproject.toml or setup.py)",
            hint="lock a version of the package that publishes a wheel or a standard sdist",
        )
    return tops[0]


def _check_built(sdist: Artifact, wheel: Path, target: Target, *, native: bool) -> None:
    """The wheel is the locked package, and it runs on the target."""
    label = _label(sdist)
    name, version, _, tags = parse_wheel_filename(wheel.name)
    try:
        same_version = version == Version(sdist.version)
    except InvalidVersion:
        same_version = False
    if canonicalize_name(str(name)) != sdist.name or not same_version:
        raise BundleError(
            f"{label}: the sdist built {wheel.name}, not {sdist.name} {sdist.version}",
            hint="the sdist's metadata disagrees with uv.lock; run `uv lock` and check the package",
        )
    pure = all(tag.abi == "none" and tag.platform == "any" for tag in tags)
    accepted = bool(set(tags) & set(target.tags()))
    if pure and accepted:
        return
    if not pure and native and accepted:
        return  # compiled here, on this platform, by an interpreter of the target's Python
    raise BundleError(
        f"{label}: its sdist builds a compiled wheel ({wheel.name}) here, which does not run on "
        f"{target.label}",
        hint=f"pack on a {target.label} host (it builds the sdist for itself there), or lock a version "
        "that publishes a wheel for that target",
    )


def build_sdists(
    sdists: Sequence[Artifact],
    fetched: Mapping[str, Path],
    *,
    stage: Path,
    scratch: Path,
    target: Target,
    python: Path,
    native: bool,
    mtime: int,
) -> list[tuple[Artifact, Path]]:
    """Each sdist's wheel, built in ``scratch``: its artifact (``built_from`` the sdist) and path.

    ``fetched`` maps each sdist's file name to its hash-checked copy in the download cache.
    ``python`` builds them; ``native`` says it is of the target's Python and this host is of the
    target's platform, so that a compiled wheel built here runs there.
    """
    built: list[tuple[Artifact, Path]] = []
    for index, sdist in enumerate(sorted(sdists, key=lambda a: a.filename)):
        label = _label(sdist)
        work = scratch / f"{index:03d}"
        source = unpack(fetched[sdist.filename], work / "src", label)
        out = work / "out"
        out.mkdir()
        with progress.step(f"building {label} from its sdist"):
            wheel = engine.build_sdist_wheel(source, label, out, python, cwd=stage, source_date_epoch=mtime)
        normalize(wheel, mtime)
        _check_built(sdist, wheel, target, native=native)
        with wheel.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        artifact = Artifact(
            sdist.name, sdist.version, wheel.name, "", digest, wheel.stat().st_size, "wheel", built_from=sdist
        )
        built.append((artifact, wheel))
    return built
