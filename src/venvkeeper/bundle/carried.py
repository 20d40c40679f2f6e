"""``pack --executable --with-python``: the CPython an executable carries, so its target needs none.

The interpreter travels as a python-build-standalone ``install_only`` archive: a ``tar.gz`` whose
top is ``python/``, with ``python/bin/python3`` and the standard library in
``python/lib/pythonX.Y/``. :mod:`venvkeeper.bundle.executable` embeds it and the executable's ``sh``
program unpacks it on a first run under the user's cache, wherever that is; so the tree must work
from any path. It comes from one of two places:

- ``--python-archive PATH``: such an archive, carried byte for byte once it is checked.
- ``--with-python`` alone: this host's own interpreter tree (``sys.base_prefix``), written as such an
  archive (the interpreter, ``libpython`` if it has one, and the standard library less
  ``site-packages``, ``test``, ``idlelib``, ``turtledemo`` and the ``config-*`` static library).

Either is refused, in one line naming the file, unless it can move: every ELF file's
``RPATH``/``RUNPATH`` entry must be relative to the file (``$ORIGIN``) and stay in the tree, and a
``libpython`` it links must be found there. pyenv's builds (``--enable-shared`` with
``RUNPATH=/root/.pyenv/versions/X/lib``) fail this; python-build-standalone's pass (``$ORIGIN/../lib``).
Other libraries the tree links from the system (beyond the C library) are allowed and reported in
``needs``: a target without them cannot import the modules that use them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from venvkeeper.bundle.archive import BundleError
from venvkeeper.bundle.elf import Dynamic, ElfError, read_dynamic
from venvkeeper.core.errors import ConfigError

__all__ = ["CarriedPython", "from_archive", "from_tree", "relocatable_problems"]

TOP = "python"
START = "python/bin/python3"  # what the executable's sh program runs
_MAX_ARCHIVE = 2 << 30  # an install_only archive is 20-60 MB; the bundle's own limit for a file
# The C library's own sonames (glibc, and musl's loader): every Linux target has them.
_C_LIBRARY = frozenset(
    {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libc.so"}
)
_LEFT_OUT = ("site-packages", "dist-packages", "test", "idlelib", "turtledemo")
_HINT = (
    "pass --python-archive with a python-build-standalone install_only archive for Python {version}"
    " (cpython-{version}.*-{machine}-unknown-linux-gnu-install_only.tar.gz), whose interpreter can move"
)


@dataclass(frozen=True)
class CarriedPython:
    archive: Path  # the tar.gz the executable carries
    sha256: str
    size: int
    version: str  # X.Y
    machine: str
    source: str  # what it was made from, for the result
    needs: tuple[str, ...]  # libraries it loads from the system, beyond the C library

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "version": self.version,
            "machine": self.machine,
            "sha256": self.sha256,
            "size": self.size,
            "needs": list(self.needs),
        }


def relocatable_problems(
    root: Path, elves: dict[str, Dynamic], present: set[str]
) -> tuple[list[str], set[str]]:
    """What keeps the tree at ``root`` from moving (one line each), and what it needs from the system.

    ``elves`` are its ELF files by path relative to ``root``; ``present`` every file it carries.
    """
    problems: list[str] = []
    needs: set[str] = set()
    for rel, dynamic in sorted(elves.items()):
        here, dirs = posixpath.dirname(rel), []
        for entry in dynamic.rpath:
            if not entry.startswith(("$ORIGIN", "${ORIGIN}")):
                problems.append(
                    f"{root / rel}: its RUNPATH {entry} is a path on this host, not one relative to the file"
                    " ($ORIGIN): the interpreter cannot be moved"
                )
                continue
            rest = entry.split("}", 1)[1] if entry.startswith("${") else entry[len("$ORIGIN") :]
            resolved = posixpath.normpath(posixpath.join(here, rest.lstrip("/")) or ".")
            if resolved == ".." or resolved.startswith("../"):
                problems.append(f"{root / rel}: its RUNPATH {entry} leaves the tree {root}")
            dirs.append(resolved)
        for lib in dynamic.needed:
            if any(posixpath.normpath(posixpath.join(d, lib)) in present for d in dirs):
                continue
            if lib.startswith("libpython"):
                problems.append(f"{root / rel}: links {lib} from outside the tree {root}: it cannot be moved")
            elif lib not in _C_LIBRARY and not lib.startswith("ld-linux"):
                needs.add(lib)
    return problems, needs


def from_tree(prefix: Path, version: str, out: Path, *, mtime: int) -> CarriedPython:
    """The interpreter tree at ``prefix`` (``bin/pythonX.Y``, ``lib/pythonX.Y``) written to ``out`` as an
    install_only archive, once it is checked to be relocatable. Raises BundleError or ConfigError."""
    binary = prefix / "bin" / f"python{version}"
    stdlib = prefix / "lib" / f"python{version}"
    if not binary.is_file() or not (stdlib / "os.py").is_file():
        raise ConfigError(
            f"{prefix}: no bin/python{version} with lib/python{version}/os.py: not an interpreter tree",
            hint=_HINT.format(version=version, machine=os.uname().machine),
        )
    files = {f"bin/python{version}": binary}
    files |= {f"lib/{p.name}": p for p in sorted((prefix / "lib").glob(f"libpython{version}*.so*"))}
    files |= _stdlib_files(stdlib, f"lib/python{version}")
    machine, needs = _check(prefix, files, version)
    _write_archive(out, files, version, mtime)
    sha, size = _sha256(out)
    return CarriedPython(out, sha, size, version, machine, f"{binary} (this host's tree)", needs)


def from_archive(path: Path, scratch: Path) -> CarriedPython:
    """A python-build-standalone install_only archive, checked (its names, then its tree unpacked into
    ``scratch``: relocatable), to be carried byte for byte. Raises BundleError or ConfigError."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the Python archive ({exc.strerror})", hint="check the path"
        ) from exc
    if size > _MAX_ARCHIVE:
        raise BundleError(
            f"{path}: {size} bytes is more than a Python archive's 2 GiB", hint="check the file"
        )
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = tar.getmembers()
            for info in members:
                _check_member(path, info)
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 on; the names were checked above either way
                tar.extractall(scratch, filter="data")
            else:  # pragma: no cover
                tar.extractall(scratch)  # noqa: S202  # every member's name and link checked above
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as exc:
        raise BundleError(
            f"{path}: not a readable tar.gz ({exc})",
            hint="give a python-build-standalone install_only archive",
        ) from exc
    root = scratch / TOP
    versions = sorted(p.parent.name[len("python") :] for p in root.glob("lib/python3.*/os.py"))
    if not (root / "bin" / "python3").exists() or len(versions) != 1:
        raise BundleError(
            f"{path}: not a python-build-standalone install_only archive (python/bin/python3 and one"
            " python/lib/python3.X/os.py)",
            hint="use the cpython-*-install_only.tar.gz of a release",
        )
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    machine, needs = _check(root, files, versions[0])
    sha, _ = _sha256(path)
    return CarriedPython(path, sha, size, versions[0], machine, str(path), needs)


def _check_member(path: Path, info: tarfile.TarInfo) -> None:
    name = info.name.rstrip("/")
    parts = name.split("/")
    bad = name.startswith("/") or parts[0] != TOP or any(p in ("", ".", "..") for p in parts)
    if not bad and info.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
        bad = info.linkname.startswith("/") or not target.startswith(TOP + "/")
    if not bad and info.islnk():
        bad = not info.linkname.startswith(TOP + "/") or ".." in info.linkname.split("/")
    if bad or not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
        raise BundleError(
            f"{path}: {info.name!r} is not a file under {TOP}/ (or its link leaves it)",
            hint="give a python-build-standalone install_only archive",
        )


def _stdlib_files(stdlib: Path, arc: str) -> dict[str, Path]:
    """The standard library's files (links followed: Debian's sitecustomize.py is one), less what a
    carried interpreter has no use for."""
    found: dict[str, Path] = {}
    for top, dirs, names in os.walk(stdlib):
        rel = Path(top).relative_to(stdlib)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in _LEFT_OUT and not d.startswith("config-")]
        dirs.sort()
        for name in sorted(names):
            path = Path(top) / name
            if path.is_file():  # a link to a file: its content; a dangling one: left out
                found[f"{arc}/{(rel / name).as_posix()}" if rel != Path(".") else f"{arc}/{name}"] = path
    return found


def _check(root: Path, files: dict[str, Path], version: str) -> tuple[str, tuple[str, ...]]:
    """The tree's machine and system needs, or the first reason it cannot move, as a BundleError."""
    elves: dict[str, Dynamic] = {}
    for rel, path in files.items():
        try:
            dynamic = read_dynamic(path)
        except (ElfError, OSError) as exc:
            raise BundleError(
                f"{path}: cannot read it as ELF ({exc})", hint="check the interpreter tree"
            ) from exc
        if dynamic is not None:
            elves[rel] = dynamic
    problems, needs = relocatable_problems(root, elves, set(files))
    machines = sorted({d.machine for d in elves.values()})
    if problems or len(machines) != 1:
        first = problems[0] if problems else f"{root}: ELF files of machines {machines or 'none'}"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BundleError(
            first + more, hint=_HINT.format(version=version, machine=machines[0] if machines else "x86_64")
        )
    return machines[0], tuple(sorted(needs))


def _write_archive(out: Path, files: dict[str, Path], version: str, mtime: int) -> None:
    """A deterministic install_only archive: sorted, owned by 0, one mtime, gzip's header without one."""
    with (
        out.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        link = tarfile.TarInfo(START)
        link.type, link.linkname, link.mode, link.mtime = (
            tarfile.SYMTYPE,
            f"python{version}",
            0o777,
            mtime,
        )
        tar.addfile(link)
        for rel in sorted(files):
            path = files[rel]
            info = tarfile.TarInfo(f"{TOP}/{rel}")
            stat = path.stat()
            info.size, info.mtime = stat.st_size, mtime
            info.mode = 0o755 if stat.st_mode & 0o111 else 0o644
            with path.open("rb") as fh:
                tar.addfile(info, fh)


def _sha256(path: Path) -> tuple[str, int]:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest(), os.fstat(fh.fileno()).st_size


def host_prefix() -> tuple[Path, str]:
    """This interpreter's tree (the base one, under a venv) and its X.Y."""
    return Path(sys.base_prefix), "%d.%d" % sys.version_info[:2]  # noqa: UP031
