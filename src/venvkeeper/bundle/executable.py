"""``venvkeeper pack --executable``: a bundle as one runnable file for a host that has only Python.

The executable is a short POSIX ``sh`` program followed by a zip (a zip may carry any prefix: Python
runs ``python3 FILE`` and zipimport reads it all the same). The zip holds three stored (uncompressed)
entries, sorted, stamped 1980-01-01, so the same bundle always gives the same bytes:

```
__main__.py     the program of :mod:`venvkeeper.bundle.bootstrap`, with the key and the script baked in
app.json        the key (the bundle's sha256), the console script, the project and the target
bundle.tar.gz   the bundle, byte for byte (made with --with-uv: the bootstrap installs with its uv)
python.tar.gz   with --with-python only: the interpreter it carries (:mod:`venvkeeper.bundle.carried`)
```

The ``sh`` prefix is the warm start: when the app is installed (the bootstrap's ``_ready``), it execs
the console script without starting Python, which would cost a whole interpreter start-up just to
look at three paths. Anything else (a first run, another Python, an error) it hands to Python with
``exec PYTHON "$0" "$@"``, which runs ``__main__.py`` exactly as a ``#!PYTHON`` line would.

With a carried interpreter the ``sh`` prefix is :data:`_CARRIED_PREFIX`: a first run unpacks
``python.tar.gz`` into the cache with sh tools, then that Python runs the zip. A signature, when
``pack --sign`` asks for one, is over the whole file (:mod:`venvkeeper.bundle.exesign`).

This module is the build side, run by ``pack``; what the file does on the target is the bootstrap's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

from venvkeeper.bundle import bootstrap
from venvkeeper.bundle.archive import EXECUTABLE, TOP, BundleError, CheckedBundle, read_bundle
from venvkeeper.bundle.carried import CarriedPython
from venvkeeper.core.errors import ConfigError
from venvkeeper.generations.wheels import inspect_wheel

__all__ = ["DEFAULT_PYTHON", "console_scripts", "default_script", "make_executable"]

DEFAULT_PYTHON = "/usr/bin/env python3"
_MAIN = "__main__.py"
CARRIED = "python.tar.gz"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1024 * 1024
_ZIP64_FROM = (1 << 31) - 1 - _CHUNK  # zipfile's ZIP64_LIMIT, less room for __main__.py and app.json
# A script name goes into a path in the sh prefix: letters, digits and a few marks, no "/" nor a
# leading "." (it is quoted as well; this keeps the name a plain file name in bin/).
_SAFE_SCRIPT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")

# The sh prefix. Its checks are bootstrap._ready's and its cache directory bootstrap._apps_dir's
# (a relative XDG_CACHE_HOME is ignored); with HOME unset or empty it leaves the lookup to Python,
# which knows the passwd fallback. It uses sh builtins only, so it works whatever PATH holds, and
# its last line execs in every case: sh never reads on into the zip.
_PREFIX = """\
#!/bin/sh
# A venvkeeper executable (pack --executable): this sh program, then a zip that Python runs.
# Installed already: exec the console script at once. Otherwise: Python runs the zip's __main__.py.
k={key} s={script}
case $XDG_CACHE_HOME in /*) c=$XDG_CACHE_HOME ;; *) c=${{HOME:+$HOME/.cache}} ;; esac
h=$c/venvkeeper/apps/$k/
if [ -n "$c" ] && [ -f "${{h}}ready" ] && [ -f "${{h}}venv/bin/$s" ] && [ -e "${{h}}venv/bin/python" ]; then
  unset VENVKEEPER_APP_REEXEC; exec "${{h}}venv/bin/$s" "$@"
fi
exec {python} "$0" "$@"
"""

# The sh program of an executable that carries its Python (--with-python). The warm start is the
# same. A first run unpacks the carried interpreter (a python-build-standalone install_only archive,
# the zip's stored entry python.tar.gz at byte o, n bytes) into the cache, with tools every Linux has
# (tail, head, sha256sum, gzip, tar, mkdir, mv, rm: Debian's essential set and busybox both), checking
# its sha256 first, in a directory of its own renamed into place when whole; then it runs the zip
# with that Python (-I: the target's PYTHONHOME or PYTHONPATH cannot redirect it). o and n are
# written with a fixed width, so the prefix's length is known before the zip's offsets are.
_CARRIED_PREFIX = """\
#!/bin/sh
# A venvkeeper executable (pack --executable --with-python): this sh program, then a zip. It carries
# its Python: a first run unpacks it into the cache, then that Python runs the zip's __main__.py.
k={key} s={script} p={python_sha} q={python_key} o={offset} n={size}
case $XDG_CACHE_HOME in /*) c=$XDG_CACHE_HOME ;; *) c=${{HOME:+$HOME/.cache}} ;; esac
h=$c/venvkeeper/apps/$k/
unset PYTHONHOME PYTHONPATH
if [ -n "$c" ] && [ -f "${{h}}ready" ] && [ -f "${{h}}venv/bin/$s" ] && [ -e "${{h}}venv/bin/python" ]; then
  unset VENVKEEPER_APP_REEXEC; exec "${{h}}venv/bin/$s" "$@"
fi
e() {{ echo "error: ${{0##*/}}: $*" >&2; exit 2; }}
[ -n "$c" ] || e "HOME is not set: set HOME or XDG_CACHE_HOME"
y=$c/venvkeeper/python/$q
# A first run killed while unpacking left $y.tmp-PID: remove it once PID is gone (kill -0, or /proc for
# another user's), never while it runs (a first run at once with this one: its mv still comes), and
# only an hour after its last change: a PID means nothing to a run in another PID namespace or on
# another host sharing this cache (containers, an NFS home), and an unpack takes seconds. No find: kept.
for u in "$y".tmp-*; do
  i=${{u##*.tmp-}}; case $i in '' | *[!0-9]*) continue ;; esac
  kill -0 "$i" 2>/dev/null || [ -d "/proc/$i" ] || [ -z "$(find "$u" -maxdepth 0 -mmin +60 2>/dev/null)" ] ||
    rm -rf "$u"
done
if [ ! -f "$y/ready" ]; then
  mkdir -p "${{y%/*}}" || e "cannot create ${{y%/*}}"
  t=$y.tmp-$$; rm -rf "$t"; mkdir "$t" || e "cannot create $t"
  tail -c +$((o + 1)) "$0" | head -c $((n)) > "$t/python.tar.gz" || {{ rm -rf "$t"; e "cannot read $0"; }}
  d=$(sha256sum < "$t/python.tar.gz") || {{ rm -rf "$t"; e "no sha256sum to check the carried Python"; }}
  [ "${{d%% *}}" = "$p" ] || {{ rm -rf "$t"; e "the carried Python is damaged: get a fresh copy"; }}
  gzip -dc < "$t/python.tar.gz" | tar -xf - -C "$t" && rm "$t/python.tar.gz" && : > "$t/ready" ||
    {{ rm -rf "$t"; e "cannot unpack the carried Python into $t"; }}
  # Another first run may have put its copy there meanwhile: then mv puts ours inside it; remove that.
  [ -d "$y" ] || mv "$t" "$y"; rm -rf "$t" "$y/${{t##*/}}"
fi
exec "$y/python/bin/python3" -I "$0" "$@"
"""
_WIDTH = 12  # digits of o and n: up to 1 TB


def make_executable(
    bundle_path: Path,
    output: Path,
    *,
    script: str,
    python: str = DEFAULT_PYTHON,
    carried: CarriedPython | None = None,
) -> None:
    """Write ``output``: an executable (mode 0755) that installs ``bundle_path`` on first run, then
    runs the members' console script ``script``. ``python`` is the interpreter that runs the zip when
    the app is not installed yet, split as a ``#!`` line would be (a path, then one optional argument);
    with ``carried`` (:mod:`~venvkeeper.bundle.carried`) the file carries its interpreter instead.

    The bundle is checked whole first (:func:`~venvkeeper.bundle.archive.read_bundle`) and must carry
    uv (``--with-uv``) and be unsigned: the executable has only the standard library, which cannot
    check a signature.
    Raises ConfigError or BundleError; ``output`` is replaced atomically, or not at all.
    """
    _check_python(python)
    if not _SAFE_SCRIPT.fullmatch(script):
        raise ConfigError(
            f"{script!r} is not a console script name the executable can run:"
            " letters, digits, '_', '.', '+' and '-' only, not starting with '.', '+' or '-'",
            hint="pass --script NAME",
        )
    out = output.absolute()
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent}: no such directory", hint="create it, or give another -o path")
    key, size = _file_sha256(bundle_path)
    checked = read_bundle(bundle_path, public_key=None)
    if EXECUTABLE not in checked.files:
        raise BundleError(
            f"{bundle_path}: carries no uv ({TOP}/{EXECUTABLE}): the executable installs with it",
            hint="pack it with --with-uv",
        )
    scripts = _member_scripts(bundle_path, checked)
    if script not in scripts and not _dependency_has(bundle_path, checked, script):
        raise ConfigError(
            f"{bundle_path}: no bundled wheel has a console script {script!r}"
            + (f" (the members have: {', '.join(scripts)})" if scripts else " (the members have none)"),
            hint="pass --script with one of them" if scripts else "add [project.scripts] to a member",
        )
    manifest = checked.manifest
    _check_zipimport_limit(bundle_path, size, str(manifest.get("target", {}).get("python", "")))
    meta = {
        "format": bootstrap.APP_FORMAT,
        "key": key,
        "size": size,
        "script": script,
        "project": manifest.get("project", {}),
        "target": manifest.get("target", {}),
    }
    if carried is not None:
        _check_carried(carried, meta["target"])
        meta["python"] = {k: v for k, v in carried.to_json().items() if k != "source"}  # no host path
    _write_atomically(out, python, meta, bundle_path, carried)


def console_scripts(bundle_path: Path) -> list[str]:
    """The console (and GUI) scripts of the bundle's members: member by member, each one's sorted."""
    return _member_scripts(bundle_path, read_bundle(bundle_path, public_key=None))


def default_script(bundle_path: Path) -> str:
    """The first of :func:`console_scripts`, for ``--executable`` without ``--script``."""
    scripts = console_scripts(bundle_path)
    if not scripts:
        raise BundleError(
            f"{bundle_path}: no member has a console script for the executable to run",
            hint="add [project.scripts] to a member, or pack without --executable",
        )
    return scripts[0]


def _check_carried(carried: CarriedPython, target: dict[str, Any]) -> None:
    """The carried interpreter is the bundle's Python, for the bundle's machine."""
    want, impl = str(target.get("python", "")), str(target.get("implementation", "cp"))
    if (carried.version, "cp") != (want, impl):
        raise ConfigError(
            f"{carried.source}: is Python {carried.version}; the bundle is for Python {want} ({impl})",
            hint=f"carry a Python {want} (--python-archive), or pack for --python {carried.version}",
        )
    platforms = [str(p) for p in target.get("platforms", [])]
    if not any(
        p.startswith(("linux_", "manylinux", "musllinux")) and p.endswith(carried.machine) for p in platforms
    ):
        raise ConfigError(
            f"{carried.source}: a Linux {carried.machine} interpreter;"
            f" the bundle is for {', '.join(platforms[:3])}",
            hint="carry an interpreter of the bundle's platform",
        )


def _check_python(python: str) -> None:
    # As a #! line's: Linux reads at most 255 bytes of one (127 before 5.1), so the limit stays.
    if not python.startswith("/") or not python.isprintable() or len(python.encode()) > 120:
        raise ConfigError(
            f"{python!r} cannot follow #! (the executable runs Python with it as a #! line would):"
            " an absolute path of printable characters is needed",
            hint=f"give an interpreter's absolute path, or {DEFAULT_PYTHON!r}",
        )


def _prefix(key: str, script: str, python: str) -> bytes:
    """The sh program before the zip; every value in it quoted. ``python`` is split as Linux splits
    a ``#!`` line: the interpreter up to the first space, the rest (if any) one argument."""
    interpreter, _, argument = python.partition(" ")
    words = [interpreter, argument.strip(" ")] if argument.strip(" ") else [interpreter]
    line = " ".join(shlex.quote(word) for word in words)
    return _PREFIX.format(key=shlex.quote(key[:32]), script=shlex.quote(script), python=line).encode()


def _check_zipimport_limit(bundle_path: Path, size: int, python: str) -> None:
    """Past 2 GiB the zip needs zip64 records, which zipimport reads from Python 3.13 on only."""
    major, _, minor = python.partition(".")
    older = major.isdigit() and minor.isdigit() and (int(major), int(minor)) < (3, 13)
    if older and size > _ZIP64_FROM:
        raise BundleError(
            f"{bundle_path}: {size} bytes is too big for an executable run by Python {python}:"
            " zipimport reads no zip64 archive before Python 3.13",
            hint="install the bundle with venvkeeper install instead, or pack for Python 3.13 or later",
        )


def _file_sha256(path: Path) -> tuple[str, int]:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest(), os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the bundle ({exc.strerror})", hint="check the path") from exc


def _member_scripts(bundle_path: Path, checked: CheckedBundle) -> list[str]:
    """The members' scripts, member by member, of a bundle :func:`~venvkeeper.bundle.archive.read_bundle`
    checked."""
    members = [str(name) for name in checked.manifest.get("members", [])]
    found = _wheel_scripts(bundle_path, members)
    return list(dict.fromkeys(script for name in members for script in found[name]))


def _dependency_has(bundle_path: Path, checked: CheckedBundle, script: str) -> bool:
    """Whether a bundled dependency (not a member) has ``script``: a tool shipped as it is."""
    members = set(checked.manifest.get("members", []))
    others = [rel[len("wheels/") :] for rel in checked.files if rel.startswith("wheels/")]
    found = _wheel_scripts(bundle_path, [name for name in others if name not in members])
    return any(script in scripts for scripts in found.values())


def _wheel_scripts(bundle_path: Path, wheels: list[str]) -> dict[str, tuple[str, ...]]:
    """The scripts of these bundled wheels (``wheels/<name>``), each read out to a scratch file."""
    wanted = {f"{TOP}/wheels/{name}": name for name in wheels}
    found: dict[str, tuple[str, ...]] = {}
    with tempfile.TemporaryDirectory(prefix="venvkeeper-executable-") as scratch:
        wheel = Path(scratch) / "wheel.whl"
        with tarfile.open(bundle_path, "r|gz") as tar:
            for info in tar:
                source = tar.extractfile(info) if info.name in wanted else None
                if source is not None:
                    with wheel.open("wb") as out:
                        shutil.copyfileobj(source, out, _CHUNK)
                    found[wanted[info.name]] = inspect_wheel(wheel).scripts
    return found


def _carried_prefix(key: str, script: str, carried: CarriedPython, offset: int) -> bytes:
    return _CARRIED_PREFIX.format(
        key=shlex.quote(key[:32]),
        script=shlex.quote(script),
        python_sha=carried.sha256,
        python_key=carried.sha256[:32],
        offset=f"{offset:<{_WIDTH}d}",  # padded with spaces: a leading 0 is octal to sh
        size=f"{carried.size:<{_WIDTH}d}",
    ).encode()


def _write_atomically(
    out: Path, python: str, meta: dict[str, Any], bundle_path: Path, carried: CarriedPython | None
) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            if carried is None:
                fh.write(_prefix(meta["key"], meta["script"], python))
                _write_zip(fh, meta, bundle_path, None)
            else:
                # The prefix names where the carried archive's bytes start: known once the zip is written.
                placeholder = _carried_prefix(meta["key"], meta["script"], carried, 0)
                fh.write(placeholder)
                offset = _write_zip(fh, meta, bundle_path, carried)
                fh.seek(0)
                fh.write(_carried_prefix(meta["key"], meta["script"], carried, offset))
                _same_length(fh.tell(), len(placeholder))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)  # noqa: S103  # it is a program: everyone may run it, as with any in bin/
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _same_length(written: int, placeholder: int) -> None:
    if written != placeholder:  # _WIDTH digits hold any offset: not reached
        raise RuntimeError("the carried prefix changed length")


def _write_zip(fh: IO[bytes], meta: dict[str, Any], bundle_path: Path, carried: CarriedPython | None) -> int:
    """The zip after the sh prefix: the bootstrap as __main__.py, app.json, the bundle as it is hashed,
    and the carried Python's archive; returns the file offset of that archive's first byte (0: none)."""

    def entry(name: str, size: int = 0) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
        info.create_system = 3  # Unix, whatever the host: the mode below is Unix's
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_STORED  # the bundle is gzip already; zlib's output can vary
        info.file_size = size  # known up front, so a bundle over 2 GiB gets zip64 headers
        return info

    program = Path(bootstrap.__file__)  # the executable's __main__.py
    source, baked = re.subn(
        r"(?m)^(_BAKED: [^=]+= )None$",
        lambda m: f"{m[1]}{(meta['key'], meta['script'])!r}",
        program.read_text(encoding="utf-8"),
    )
    if baked != 1:
        raise RuntimeError(f"{program}: no one line to bake the key into")
    sha = hashlib.sha256()
    with zipfile.ZipFile(fh, "w") as zf:
        zf.writestr(entry(_MAIN), source.encode())
        zf.writestr(entry(bootstrap.META), json.dumps(meta, sort_keys=True, indent=2) + "\n")
        with bundle_path.open("rb") as src, zf.open(entry(bootstrap.BUNDLE, meta["size"]), "w") as dst:
            while chunk := src.read(_CHUNK):
                sha.update(chunk)
                dst.write(chunk)
        offset = _write_carried(zf, fh, entry(CARRIED, carried.size), carried) if carried else 0
    if sha.hexdigest() != meta["key"]:
        raise BundleError(
            f"{bundle_path}: changed while it was made into an executable",
            hint="run the command again once nothing else writes the bundle",
        )
    return offset


def _write_carried(zf: zipfile.ZipFile, fh: IO[bytes], info: zipfile.ZipInfo, carried: CarriedPython) -> int:
    """The carried archive as a stored entry, checked against its sha256 as it is copied."""
    sha = hashlib.sha256()
    with carried.archive.open("rb") as src, zf.open(info, "w") as dst:
        offset = fh.tell()  # zipfile wrote the local header: the data starts here
        while chunk := src.read(_CHUNK):
            sha.update(chunk)
            dst.write(chunk)
    if sha.hexdigest() != carried.sha256:
        raise BundleError(
            f"{carried.archive}: changed while it was made into an executable",
            hint="run the command again once nothing else writes it",
        )
    return offset
