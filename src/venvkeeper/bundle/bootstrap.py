"""The program inside ``venvkeeper pack --executable``'s file: it runs on a host that has only Python.

:mod:`venvkeeper.bundle.executable` writes this very file into the zipapp as its ``__main__.py``,
with the key (the bundle's sha256) and the console script baked into ``_BAKED``. It runs on the
target, where venvkeeper is not installed: module level is standard library only and stays valid
Python 3.8, for a bundle packed for an older Python than venvkeeper's own. Its other imports are
inside the functions that need them, so that the fast path loads nothing more than ``os`` and
``sys``; it starts the bundled uv itself (tests/test_architecture.py exempts this module alone).

The program runs the console script from ``${XDG_CACHE_HOME:-~/.cache}/venvkeeper/apps/<key[:32]>``.
When that directory holds ``ready``, it execs ``venv/bin/<script>`` at once: three ``stat`` calls,
no file read, no hashing. (The executable's ``sh`` prefix, written by
:mod:`~venvkeeper.bundle.executable`, makes this same check before Python starts, so this fast path
runs only for ``python3 FILE`` or when the prefix cannot name the cache, with HOME unset.)
Otherwise (a first run) it takes an exclusive ``flock`` on
``<key[:32]>.lock`` beside it, looks again, and installs: it hashes the embedded bundle against the
key, extracts the bundle's regular files under ``venvkeeper-bundle/`` (no links, no absolute names,
no ``..``) checking each one's sha256 against the manifest, makes a relocatable venv with the
bundled uv and syncs the bundle's ``pylock.toml`` into it offline, all in ``<dir>.tmp-<pid>``,
writes ``ready`` there last and renames the directory into place. So the directory is complete or
absent, and two first runs at once build it once. Any problem is one ``error:`` line on stderr and
exit status 2.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: the executable's start-up is what users wait on
if TYPE_CHECKING:
    from typing import IO, Any

__all__ = ["APP_FORMAT", "BUNDLE", "META"]

APP_FORMAT = 1
META = "app.json"
BUNDLE = "bundle.tar.gz"
_TOP = "venvkeeper-bundle"  # bundle.archive.TOP: the bootstrap cannot import venvkeeper
_UV = "uv/uv"  # bundle.archive.EXECUTABLE
_NOT_LISTED = ("manifest.json", "manifest.json.sig")
_CHUNK = 1024 * 1024
_REEXEC = "VENVKEEPER_APP_REEXEC"  # set for one re-exec under the bundle's Python, then removed
_DAMAGED = "the file is damaged: get a fresh copy"

# The executable's copy of this module has (key, script) here, written by make_executable: the fast
# path then needs no file but the cache's, and not even the json module (with re, a third of it).
_BAKED: tuple[str, str] | None = None


class _AppError(Exception):
    """A problem, in one line for stderr; the executable exits 2."""


def _main() -> int:
    """Exec the installed console script, installing it first on a first run. Returns only on error."""
    reexeced = os.environ.pop(_REEXEC, "") == "1"
    archive = ""
    try:
        archive = _archive()
        key, name = _BAKED or ("", "")
        home = os.path.join(_apps_dir(), key[:32])
        script = os.path.join(home, "venv", "bin", name)
        if not _ready(home, script):
            _install(archive, key, home, script, reexeced=reexeced)
        try:
            os.execv(script, [script, *sys.argv[1:]])  # noqa: S606
        except OSError as exc:
            raise _AppError(f"cannot run {script}: {exc.strerror or exc}") from exc
    except _AppError as exc:
        label = os.path.basename(archive or sys.argv[0]) or "venvkeeper executable"
        sys.stderr.write(f"error: {label}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0  # not reached: execv does not return


def _archive() -> str:
    """The executable's path, from the zipimporter that runs this."""
    archive = getattr(globals().get("__loader__"), "archive", None)
    if not isinstance(archive, str) or _BAKED is None:
        raise _AppError("not run as a venvkeeper executable (a zipapp made by pack --executable)")
    return archive


def _read_meta(archive: str, key: str) -> dict[str, Any]:
    """The executable's app.json, which must name the key baked into __main__.py."""
    import json  # noqa: PLC0415
    import zipimport  # noqa: PLC0415

    try:
        meta = json.loads(zipimport.zipimporter(archive).get_data(META))
    except (OSError, ValueError, zipimport.ZipImportError) as exc:
        raise _AppError(f"{archive}: cannot read its {META} ({exc}): {_DAMAGED}") from exc
    if not isinstance(meta, dict) or meta.get("format") != APP_FORMAT or meta.get("key") != key:
        raise _AppError(f"{archive}: its {META} is not one this bootstrap reads: {_DAMAGED}")
    return meta


def _apps_dir() -> str:
    """``$XDG_CACHE_HOME/venvkeeper/apps``; a relative XDG_CACHE_HOME is ignored, as the spec says
    (executable._PREFIX names the same directory in sh)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "venvkeeper", "apps")


def _ready(home: str, script: str) -> bool:
    """The fast path's whole check: three stats (the venv's python link still resolves).
    executable._PREFIX makes the same check in sh: change both together."""
    python = os.path.join(home, "venv", "bin", "python")
    return os.path.isfile(os.path.join(home, "ready")) and os.path.isfile(script) and os.path.exists(python)


def _install(archive: str, key: str, home: str, script: str, *, reexeced: bool) -> None:
    """A first run: under the key's lock, build ``home`` unless another run just did."""
    import fcntl  # noqa: PLC0415

    _check_interpreter(archive, _read_meta(archive, key), reexeced=reexeced)
    apps = os.path.dirname(home)
    try:
        os.makedirs(apps, exist_ok=True)
        fd = os.open(home + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise _AppError(f"cannot use the cache directory {apps}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed (it is not inherited by exec)
        if not _ready(home, script):
            _build(archive, key, home)
            if not _ready(home, script):
                raise _AppError(f"the bundle installs no console script {os.path.basename(script)!r}")
    finally:
        os.close(fd)


def _check_interpreter(archive: str, meta: dict[str, Any], *, reexeced: bool) -> None:
    """Refuse another Python minor or OS than the bundle's, after trying ``pythonX.Y`` on PATH once."""
    import shutil  # noqa: PLC0415

    target = meta.get("target") or {}
    want, want_impl = str(target.get("python", "")), str(target.get("implementation", "cp"))
    have = "%d.%d" % sys.version_info[:2]  # noqa: UP031
    impl = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, sys.implementation.name)
    if want not in ("", have) or want_impl != impl:
        other = shutil.which(f"python{want}") if want and not reexeced else None
        if other and _reports(other, f"{want_impl} {want}"):
            os.environ[_REEXEC] = "1"
            try:
                os.execv(other, [other, archive, *sys.argv[1:]])  # noqa: S606
            except OSError:
                del os.environ[_REEXEC]
        raise _AppError(
            f"the bundle is for Python {want} ({want_impl}); {sys.executable} is Python {have} ({impl}),"
            f" and no python{want} on PATH is: run it with a Python {want}"
        )
    platforms = [str(p) for p in target.get("platforms", [])]
    family = {"linux": "linux", "darwin": "macosx"}.get(sys.platform, sys.platform)
    if platforms and "any" not in platforms and not any(family in tag for tag in platforms):
        shown = ", ".join(platforms[:3])
        raise _AppError(f"the bundle is for {shown}; this host is {sys.platform}")


def _reports(python: str, expected: str) -> bool:
    """Whether ``python`` runs and is ``expected`` ("cp 3.11"): a pyenv shim may be neither."""
    import subprocess  # noqa: PLC0415

    code = (
        "import sys; n = sys.implementation.name;"
        "print({'cpython': 'cp', 'pypy': 'pp'}.get(n, n), '%d.%d' % sys.version_info[:2])"
    )
    try:
        proc = subprocess.run(
            [python, "-I", "-S", "-c", code],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and proc.stdout.decode(errors="replace").strip() == expected


def _build(archive: str, key: str, home: str) -> None:
    """Install into ``home.tmp-<pid>``, write ``ready`` last, rename into place (holding the lock)."""
    import json  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    _sweep(home)
    tmp = f"{home}.tmp-{os.getpid()}"
    try:
        try:
            os.mkdir(tmp)
            source = os.path.join(tmp, "bundle")
            os.mkdir(source)
        except OSError as exc:
            raise _AppError(f"cannot create {tmp}: {exc.strerror or exc}") from exc
        _unpack(archive, key, source)
        _uv_install(source, tmp)
        try:
            shutil.rmtree(source)
            shutil.rmtree(os.path.join(tmp, "uv-cache"), ignore_errors=True)
            with open(os.path.join(tmp, "ready"), "w") as fh:
                fh.write(json.dumps({"key": key, "python": sys.executable}, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, home)
            _fsync_dir(os.path.dirname(home))
        except OSError as exc:
            raise _AppError(f"cannot install into {home}: {exc.strerror or exc}") from exc
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _sweep(home: str) -> None:
    """What a killed first run left (we hold the lock: no other run is using it), and a stale ``home``
    (no ``ready``, or its interpreter is gone)."""
    import shutil  # noqa: PLC0415

    apps, base = os.path.split(home)
    try:
        for name in os.listdir(apps):
            if name.startswith((base + ".tmp-", base + ".old-")):
                shutil.rmtree(os.path.join(apps, name), ignore_errors=True)
        if os.path.lexists(home):
            old = f"{home}.old-{os.getpid()}"
            os.rename(home, old)
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise _AppError(f"cannot clear {home} for a new install: {exc.strerror or exc}") from exc


def _unpack(archive: str, key: str, dest: str) -> None:
    """Check the embedded bundle against ``key``, then extract it checking every file against the
    manifest. Damage of any kind is an _AppError naming it."""
    import tarfile  # noqa: PLC0415
    import zipfile  # noqa: PLC0415
    import zlib  # noqa: PLC0415

    where = f"{archive}: the embedded {BUNDLE}"
    try:
        with zipfile.ZipFile(archive) as zf:
            with zf.open(BUNDLE) as fh:
                digest = _sha256(fh)
            if digest != key:
                raise _AppError(f"{where}: its sha256 is not the one recorded at build time: {_DAMAGED}")
            with zf.open(BUNDLE) as fh:
                found = _untar(fh, dest, where)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, KeyError) as exc:
        raise _AppError(f"{where}: cannot be read ({exc}): {_DAMAGED}") from exc
    except OSError as exc:
        raise _AppError(f"cannot extract into {dest}: {exc.strerror or exc}") from exc
    _check_manifest(found, dest, where)


def _sha256(fh: IO[bytes]) -> str:
    import hashlib  # noqa: PLC0415

    sha = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        sha.update(chunk)
    return sha.hexdigest()


def _untar(fh: IO[bytes], dest: str, where: str) -> dict[str, tuple[int, str]]:
    """Every entry written under ``dest`` (relative to the bundle's top), as {path: (size, sha256)}."""
    import hashlib  # noqa: PLC0415
    import tarfile  # noqa: PLC0415

    found: dict[str, tuple[int, str]] = {}
    with tarfile.open(fileobj=fh, mode="r|gz") as tar:
        for info in tar:
            parts = info.name.split("/")
            if not info.isreg():
                raise _AppError(f"{where}: {info.name!r} is not a regular file: {_DAMAGED}")
            bad = info.name.startswith("/") or parts[0] != _TOP or len(parts) < 2
            if bad or any(part in ("", ".", "..") for part in parts[1:]):
                raise _AppError(f"{where}: {info.name!r} is not a name under {_TOP}/: {_DAMAGED}")
            rel = "/".join(parts[1:])
            if rel in found:
                raise _AppError(f"{where}: {info.name!r} appears twice: {_DAMAGED}")
            path = os.path.join(dest, *parts[1:])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            source = tar.extractfile(info)
            sha, size = hashlib.sha256(), 0
            with os.fdopen(os.open(path, flags, 0o755 if rel == _UV else 0o644), "wb") as out:
                while source is not None and (chunk := source.read(_CHUNK)):
                    sha.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            found[rel] = (size, sha.hexdigest())
    return found


def _check_manifest(found: dict[str, tuple[int, str]], dest: str, where: str) -> None:
    """The extracted files are exactly the manifest's, with its sizes and sha256, and uv is one."""
    import json  # noqa: PLC0415

    try:
        with open(os.path.join(dest, "manifest.json"), "rb") as fh:
            manifest = json.load(fh)
        listed = {e["path"]: (e["size"], e["sha256"]) for e in manifest["files"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _AppError(f"{where}: {_TOP}/manifest.json cannot be read ({exc}): {_DAMAGED}") from exc
    content = {rel: sized for rel, sized in found.items() if rel not in _NOT_LISTED}
    for rel in sorted(set(content) | set(listed)):
        if content.get(rel) != listed.get(rel):
            raise _AppError(f"{where}: {_TOP}/{rel} is not what its manifest lists: {_DAMAGED}")
    if _UV not in content:
        raise _AppError(f"{where}: carries no {_TOP}/{_UV} (pack it with --with-uv)")


def _uv_install(source: str, tmp: str) -> None:
    """A relocatable venv (its scripts find their python relative to themselves, so the directory
    can be renamed into place) with the bundle's pylock.toml synced into it, offline."""
    uv, venv = os.path.join(source, _UV), os.path.join(tmp, "venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") and k != "VIRTUAL_ENV"}
    env.update({"UV_OFFLINE": "1", "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"})
    if not sys.executable:
        raise _AppError("this Python does not know its own path (sys.executable is empty)")
    _run_uv(
        [uv, "venv", "--quiet", "--relocatable", "--no-project", "--python", sys.executable, venv], tmp, env
    )
    _run_uv(
        [
            *(uv, "pip", "sync", "--quiet", "--offline", "--no-index", "--preview-features", "pylock"),
            *("--python", os.path.join(venv, "bin", "python"), "--cache-dir", os.path.join(tmp, "uv-cache")),
            "pylock.toml",
        ],
        source,
        env,
    )


def _run_uv(argv: list[str], cwd: str, env: dict[str, str]) -> None:
    import subprocess  # noqa: PLC0415

    what = " ".join(argv[1:3]) if argv[1] == "pip" else argv[1]
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False
        )
    except OSError as exc:
        raise _AppError(f"cannot run the bundled uv {argv[0]}: {exc.strerror or exc}") from exc
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.decode(errors="replace").splitlines() if line.strip()]
        first = next((line for line in lines if line.lower().startswith("error")), lines[-1] if lines else "")
        raise _AppError(f"uv {what} failed (exit {proc.returncode}): {first or 'no output'}")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(_main())
