"""The only module that runs uv.

uv is found explicitly, in this order: the binary shipped in the ``uv`` wheel we depend on
(``uv.find_uv_bin()``), then ``$UV``, then ``PATH``; it must be at least ``MIN_UV_VERSION``.
Every call gets a cleaned environment so that the caller's shell cannot change what is installed.

uv's cache is chosen once per command (:func:`cache_scope`, :func:`uv_cache`): ``UV_CACHE_DIR`` when
the operator set it; else uv's own default (``$XDG_CACHE_HOME/uv``, ``~/.cache/uv``) when this user can
create or write it; else, for a service user whose home is missing, unset or unreadable (``useradd
-r``), a directory of the command's own (the environment's state directory), named in ``--json`` and
``status``. uv has no fallback of its own: it fails with "Failed to initialize cache".
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from venvkeeper.core.errors import ToolError
from venvkeeper.core.lazy import lazy

if TYPE_CHECKING:
    import uv
else:
    # The uv wheel's binary, looked up only when uv is first run. A system uv on PATH also serves
    # when the module is missing: reading it then raises ImportError, handled where it is read.
    uv = lazy("uv")

__all__ = [
    "MIN_UV_VERSION",
    "UvCache",
    "UvResult",
    "cache_scope",
    "cache_used",
    "find_uv",
    "per_user_dir",
    "run_uv",
    "unusable_reason",
    "uv_cache",
    "uv_env",
    "uv_version",
]

MIN_UV_VERSION = (0, 9, 0)

# uv reads these from the environment and would change the selection behind the flags' back
# (UV_NO_GROUP drops a group that --group names; UV_DEV / UV_NO_DEV add or drop dev): this module drops
# them from every uv call (the selection rule itself is venvkeeper.project.selection).
# UV_NO_INSTALL_* and UV_NO_EDITABLE would leave members out or install them as links into the
# source; UV_NO_SOURCES would resolve [tool.uv.sources] packages from the index instead.
IGNORED_UV_VARIABLES = (
    "UV_DEV",
    "UV_NO_DEV",
    "UV_NO_GROUP",
    "UV_NO_DEFAULT_GROUPS",
    "UV_NO_INSTALL_PROJECT",
    "UV_NO_INSTALL_WORKSPACE",
    "UV_NO_INSTALL_LOCAL",
    "UV_NO_EDITABLE",
    "UV_NO_SOURCES",
)

# Variables that would point uv at another environment or project, or inject code into the
# interpreters it probes. UV_PROJECT_ENVIRONMENT is set explicitly where it is wanted.
_DROPPED = (
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "UV_PROJECT_ENVIRONMENT",
    "UV_PROJECT",
    # uv reads UV_WORKING_DIR (it would run `uv lock` or a build in the source tree itself);
    # UV_WORKING_DIRECTORY is dropped too, in case a later uv spells it so.
    "UV_WORKING_DIR",
    "UV_WORKING_DIRECTORY",
    # The interpreter is always passed (--python); an exported UV_PYTHON must not pick it instead.
    "UV_PYTHON",
    "UV_FROZEN",
    "UV_LOCKED",
    "UV_NO_SYNC",
    # What the lock installs is chosen by the selection's flags alone (UV_NO_GROUP, UV_DEV, ...).
    *IGNORED_UV_VARIABLES,
    # A version plugin runs git in the staging copy: a git hook's GIT_DIR (a deploy from
    # post-receive) would point it at the source repository instead (see staging.py).
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
)


@dataclass(frozen=True)
class UvResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _probe(candidate: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [candidate, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"uv (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(p) for p in match.groups()) if match else None


_LOCATE_LOCK = threading.Lock()


def _located() -> tuple[str, tuple[int, ...]]:
    # Deploy runs uv from two threads at once. The lookup is serialised: besides probing only once,
    # uv.find_uv_bin() reads sysconfig, whose lazy first initialisation is not thread-safe (a second
    # thread can see get_config_var("EXE") return None).
    with _LOCATE_LOCK:
        return _locate_once()


@functools.cache
def _locate_once() -> tuple[str, tuple[int, ...]]:
    candidates: list[tuple[str, str]] = []
    with contextlib.suppress(ImportError, FileNotFoundError):
        candidates.append(("the uv package", uv.find_uv_bin()))
    if os.environ.get("UV"):
        candidates.append(("$UV", os.environ["UV"]))
    on_path = shutil.which("uv")
    if on_path:
        candidates.append(("PATH", on_path))
    too_old: list[str] = []
    for origin, candidate in candidates:
        version = _probe(candidate)
        if version is None:
            continue
        if version >= MIN_UV_VERSION:
            return candidate, version
        too_old.append(f"{candidate} ({origin}) is {'.'.join(map(str, version))}")
    wanted = ".".join(map(str, MIN_UV_VERSION))
    if too_old:
        raise ToolError(
            f"uv is too old: {'; '.join(too_old)}; venvkeeper needs uv >= {wanted}",
            hint=f"pip install 'uv>={wanted}' into venvkeeper's environment, or set $UV to a newer uv",
        )
    raise ToolError(
        "uv not found (not in venvkeeper's environment, $UV or PATH)",
        hint=f"pip install 'uv>={wanted}' into venvkeeper's environment, or set $UV to a uv binary",
    )


def find_uv() -> str:
    """Path of the uv binary to use (cached for the process)."""
    return _located()[0]


def uv_version() -> str:
    return ".".join(map(str, _located()[1]))


@dataclass(frozen=True)
class UvCache:
    """Where uv's cache goes for this command, and why there."""

    dir: str
    why: str
    chosen: bool  # a directory of venvkeeper's own (uv's default was not usable)
    # Set as UV_PYTHON_INSTALL_DIR when uv's default (under an unreadable home) cannot be listed:
    # uv's interpreter discovery fails on it ("failed to read directory ... Permission denied")
    # where a missing one is simply skipped. A path that does not exist, so nothing is found there.
    python_dir: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"dir": self.dir, "why": self.why}


def unusable_reason(path: str) -> str | None:
    """Why this user cannot keep uv's cache at ``path`` (None: it can, creating it if need be)."""
    if not os.path.isabs(path):
        return f"{path} is not an absolute path"
    probe = _nearest_existing(path)
    if not os.path.isdir(probe):
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        missing = "" if probe == path else f"{path} does not exist and "
        return f"{missing}{probe} is not writable by this user"
    return None


def _nearest_existing(path: str) -> str:
    """``path`` itself, or the nearest directory above it that exists (``/`` at the last)."""
    probe = path
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return probe


_CACHE_LOCK = threading.Lock()
# The command's fallback directory and its choice, with what the choice was made from: a choice
# is remade when the variables it read change (in-process tests run many commands).
_scope: dict[str, object] = {
    "fallback": None,
    "chosen": None,
    "key": None,
    "project": None,
    "throwaway": None,  # --check's cache directory (throwaway_cache)
}
_CACHE_VARIABLES = ("UV_CACHE_DIR", "XDG_CACHE_HOME", "HOME")


def _cache_key() -> tuple[object, ...]:
    return (os.getuid(), *(os.environ.get(name) for name in _CACHE_VARIABLES))


@contextlib.contextmanager
def cache_scope(fallback: Path | None, *, project: Path | None = None) -> Iterator[None]:
    """One command's choice of uv cache: ``fallback`` (e.g. ``<env>.venvkeeper/uv-cache``) is used
    only when UV_CACHE_DIR is unset and uv's default is not usable by this user.

    ``project``: uv is asked from there, so a ``cache-dir`` in the project's ``[tool.uv]`` or
    ``uv.toml`` counts, as it does for the uv calls that run in its staging copy."""
    with _CACHE_LOCK:
        before = dict(_scope)
        _scope.update(fallback=fallback, chosen=None, key=None, project=project)
    try:
        yield
    finally:
        with _CACHE_LOCK:
            _scope.clear()
            _scope.update(before)


@contextlib.contextmanager
def throwaway_cache() -> Iterator[None]:
    """``--check``: every uv run of the body uses a new empty cache (and scratch directory), removed
    after, so that a check writes nothing (``uv lock --check`` fills a cache with the index's answers).
    The interpreter directory is chosen as for any command, on the first uv run."""
    scratch = Path(tempfile.mkdtemp(prefix="venvkeeper-check-uv-cache-"))
    (scratch / "tmp").mkdir()
    with _CACHE_LOCK:
        before = dict(_scope)
        _scope.update(fallback=scratch, chosen=None, key=None, project=None, throwaway=scratch)
    try:
        yield
    finally:
        with _CACHE_LOCK:
            _scope.clear()
            _scope.update(before)
        shutil.rmtree(scratch, ignore_errors=True)


def uv_cache() -> UvCache:
    """The cache uv uses in this command (decided on first use, then kept)."""
    with _CACHE_LOCK:
        chosen, key = _scope["chosen"], _cache_key()
        if isinstance(chosen, UvCache) and _scope["key"] == key:
            return chosen
        fallback, throwaway = _scope["fallback"], _scope.get("throwaway")
        if isinstance(throwaway, Path):
            decided = _with_python_dir(
                UvCache(str(throwaway), "--check: a throwaway cache, removed after", True)
            )
        else:
            decided = _choose_cache(fallback if isinstance(fallback, Path) else None)
        _scope.update(chosen=decided, key=key)
        return decided


def cache_used() -> UvCache | None:
    """The cache this command chose, if it ran uv at all (None: it did not)."""
    with _CACHE_LOCK:
        chosen = _scope["chosen"]
        return chosen if isinstance(chosen, UvCache) else None


def _choose_cache(fallback: Path | None) -> UvCache:
    return _with_python_dir(_choose_cache_dir(fallback))


def _with_python_dir(chosen: UvCache) -> UvCache:
    if os.environ.get("UV_PYTHON_INSTALL_DIR"):
        return chosen
    default = _uv_query("python", "dir")
    if default is None or _listable(default):
        return chosen
    return replace(chosen, python_dir=f"{chosen.dir.rstrip('/')}-no-managed-pythons")


def _listable(path: str) -> bool:
    """A missing directory is fine (uv skips it); one this user cannot list or reach is not."""
    probe = _nearest_existing(path)
    if not os.path.lexists(probe):
        return True
    if probe != path:
        return os.access(probe, os.X_OK)
    return os.access(probe, os.R_OK | os.X_OK)


def _choose_cache_dir(fallback: Path | None) -> UvCache:
    explicit = os.environ.get("UV_CACHE_DIR")
    if explicit:
        # The operator's choice is honoured even when unusable: uv's failure then names it.
        return UvCache(explicit, "UV_CACHE_DIR", chosen=False)
    default = _uv_query("cache", "dir")
    reason = unusable_reason(default) if default else "uv cannot say where its cache is"
    if reason is None and default:
        origin = "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "the home directory"
        return UvCache(default, f"uv's choice, from its configuration or {origin}", chosen=False)
    if fallback is None:
        # No directory of the command's own (export, pack, install, verify --project): one per user
        # under the temporary directory.
        fallback, where = _per_user_cache(), "a per-user directory under the temporary directory"
    else:
        where = "the environment's own state directory"
        # Should this fail, uv's own error names the directory (classified as cache-unusable).
        with contextlib.suppress(OSError):
            fallback.mkdir(mode=0o700, parents=True, exist_ok=True)
    return UvCache(str(fallback), f"uv's default cache is not usable ({reason}); using {where}", chosen=True)


def _per_user_cache() -> Path:
    return per_user_dir("venvkeeper-uv-cache")


def per_user_dir(prefix: str) -> Path:
    """``$TMPDIR/PREFIX-UID``, only if this user owns it (another user could have made it first, or
    a link there); else a fresh private one. For a user with no usable home."""
    path = Path(tempfile.gettempdir()) / f"{prefix}-{os.getuid()}"
    with contextlib.suppress(OSError):
        path.mkdir(mode=0o700)
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
        return path
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-"))


def _uv_query(*args: str) -> str | None:
    """``uv cache dir`` or ``uv python dir``: the default uv would use, with the caller's environment."""
    env = uv_env(cache=False)
    project = _scope.get("project")
    try:
        proc = subprocess.run(
            [find_uv(), *args],
            cwd=project if isinstance(project, Path) and project.is_dir() else "/",
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if proc.returncode == 0 and lines else None


def uv_env(extra: Mapping[str, str] | None = None, *, cache: bool = True) -> dict[str, str]:
    """The environment every uv call runs with."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env["UV_NO_PROGRESS"] = "1"
    # uv wraps its error chain at $COLUMNS (pytest-xdist and some terminals set it to 80), which cuts
    # a message such as "needs to be updated, but `--check` was / provided" in two: venvkeeper reads
    # and repeats uv's words, so they must arrive one cause a line.
    env["COLUMNS"] = "100000"
    # A deploy must never fetch an interpreter behind the operator's back; a missing one is an error.
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    if cache:
        chosen = uv_cache()
        # Always the cache this command chose and reports: a uv call run from another directory
        # (`uv cache clean` from /) would otherwise miss a project's own cache-dir.
        env["UV_CACHE_DIR"] = chosen.dir
        if chosen.python_dir:
            env["UV_PYTHON_INSTALL_DIR"] = chosen.python_dir
        # Read without _CACHE_LOCK: uv_cache() holds it while it asks uv (uv_env(cache=False)), and
        # a dict lookup is atomic. --check: uv's own scratch files (a build's `uv-setuptools-*.lock`
        # in $TMPDIR) go with the throwaway cache, so that a check leaves nothing behind anywhere.
        throwaway = _scope.get("throwaway")
        if isinstance(throwaway, Path):
            env["TMPDIR"] = str(throwaway / "tmp")
    if extra:
        env.update(extra)
    return env


def run_uv(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> UvResult:
    """Run ``uv ARGS`` in ``cwd`` and capture its output; never raises on a non-zero exit.

    ``cwd`` is always given: uv discovers configuration by walking up from its working directory,
    and the caller's directory (possibly an unreadable /root) must not matter.
    """
    argv = (find_uv(), *args)
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=uv_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"uv {' '.join(args[:2])} did not finish within {timeout:.0f}s",
            hint="check the package index is reachable",
        ) from exc
    except OSError as exc:
        raise ToolError(f"cannot run uv at {argv[0]}: {exc.strerror}", hint="reinstall uv") from exc
    return UvResult(argv, proc.returncode, proc.stdout, proc.stderr)
