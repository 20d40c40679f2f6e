"""The uv operations a deploy is made of, each turning uv's failure into one clear error
(:mod:`venvkeeper.generations.uverrors`).

Everything here runs through :func:`venvkeeper.gateways.uv.run_uv`, in a staging copy of the project
(never in the source tree), with the lock frozen: uv never re-resolves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from venvkeeper.core.errors import BuildError, InstallError, InterpreterError, LockError
from venvkeeper.gateways.uv import run_uv, uv_cache
from venvkeeper.gateways.uvfailure import (
    BUILD_FAILED,
    INDEX_UNREACHABLE,
    LOCK_OUT_OF_DATE,
    NO_SOLUTION,
    UV_FAILED,
    UvContext,
    chain,
    classify,
    needs_network,
)
from venvkeeper.generations import uverrors
from venvkeeper.project import selection

__all__ = [
    "build_sdist_wheel",
    "build_wheel",
    "cache_dir",
    "check_lock",
    "clean_cache",
    "create_venv",
    "digest_of_export",
    "export_file",
    "export_requirements",
    "export_text",
    "find_python",
    "install_pylock",
    "install_requirements",
    "install_wheels",
    "python_install_dir",
    "relock",
    "sync_dependencies",
    "uninstall",
]


def _group_args(groups: Sequence[str]) -> list[str]:
    """The runtime dependencies and exactly ``groups``: the rule of :mod:`venvkeeper.project.selection`."""
    return selection.uv_args(groups)


def check_lock(stage: Path, lock_path: Path, stale: Path | None, python: Path) -> None:
    """Fail unless uv.lock is current for every member's pyproject.toml (``uv lock --check``).

    Offline first: the answer normally needs nothing but the lock and the cache. When uv failed only
    because it had to fetch something (a member with dynamic metadata is built to read it, and its
    build requirements, e.g. hatchling's ``editables`` for the editable build uv asks for, are not in a
    fresh cache: a non-editable deploy never downloads them), it runs once more online, which also
    fills the cache for next time. ``python`` is the interpreter the command resolved: without it
    uv would pick one itself (a ``.python-version`` naming one this host lacks fails the check).
    """
    base = ["lock", "--check", "--python", str(python), "--quiet"]
    result = run_uv([*base, "--offline"], cwd=stage)
    if not result.ok and needs_network(result.stderr):
        result = run_uv(base, cwd=stage)
    if result.ok:
        return
    cause = classify(result.stderr, result.returncode).cause
    # uv could not decide (no index, no solution for the new requirements), but a member's declared
    # dependencies differ from what the lock recorded: the lock is out of date, and that is the answer.
    if cause == LOCK_OUT_OF_DATE or (stale is not None and cause in (INDEX_UNREACHABLE, NO_SOLUTION)):
        against = f" with {stale}" if stale else ""
        raise LockError(
            f"{lock_path}: out of date{against}",
            hint=f"run `uv lock` in {lock_path.parent} and commit uv.lock; venvkeeper never re-resolves",
            cause=LOCK_OUT_OF_DATE,
        )
    uverrors.no_version(result, stage, None)
    raise uverrors.failure(
        result,
        UvContext(
            f"{lock_path}: uv cannot check it",
            LockError,
            python=str(python),
            project=str(lock_path.parent),
            fallback_hint=f"run `uv lock` in {lock_path.parent}",
            untouched="nothing was changed",
        ),
    )


def find_python(stage: Path, request: str | None, *, project: Path | None = None) -> Path:
    """The interpreter for this project: ``request`` (a path or a version), else the one uv picks from
    .python-version/requires-python. One outside requires-python is refused here, before any slow work
    (uv itself only warns in ``python find``, and fails much later in ``sync``)."""
    args = ["python", "find"]
    if request:
        args.append(request)
    result = run_uv(args, cwd=stage)
    found = result.stdout.strip().splitlines()
    if not result.ok or not found:
        pin = stage / ".python-version"
        if request:
            wanted = f"'{request}'"
        elif pin.is_file():
            wanted = f"the project's .python-version ({' '.join(pin.read_text().split()[:1])})"
        else:
            wanted = "the project's requires-python"
        raise uverrors.failure(
            result,
            UvContext(f"no usable Python interpreter for {wanted}", InterpreterError, python=request),
            detail=False,
        )
    given = request if request and "/" in request else None
    uverrors.unsupported(result, given or found[-1], project or stage)
    return Path(given or found[-1])


def _export(cwd: Path, groups: Sequence[str], python: Path, *extra: str) -> str:
    result = run_uv(
        [
            "export",
            "--frozen",
            "--python",
            str(python),
            "--all-packages",
            *_group_args(groups),
            "--no-emit-workspace",
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements.txt",
            "--quiet",
            *extra,
        ],
        cwd=cwd,
    )
    if not result.ok:
        raise uverrors.failure(
            result,
            UvContext(
                "uv.lock: cannot be read for export",
                LockError,
                python=str(python),
                fallback_hint="run `uv lock`",
            ),
        )
    return result.stdout


def export_text(stage: Path, groups: Sequence[str], python: Path) -> str:
    """uv's hashed export of exactly what the lock installs for these groups. A lock change that does
    not touch them (a dev tool bumped) keeps its digest (:func:`digest_of_export`): no new generation."""
    return _export(stage, groups, python)


def digest_of_export(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def export_requirements(project: Path, groups: Sequence[str], python: Path) -> str:
    """The lock's third-party packages for these groups, as requirement lines with markers.

    ``--frozen`` reads uv.lock as it is and writes nothing, so this runs in the project itself.
    """
    return _export(project, groups, python, "--no-hashes")


def cache_dir() -> str | None:
    """uv's cache directory as this command uses it (see :func:`venvkeeper.gateways.uv.uv_cache`)."""
    return uv_cache().dir


def clean_cache(packages: Sequence[str]) -> None:
    """Drop uv's cached files for ``packages``, so the next install fetches them afresh.

    uv installs by hard-linking from its cache, so a file edited inside an environment edits the
    cache too, and every later install would copy the damage; removing the entries is the remedy.
    """
    if not packages:
        return
    result = run_uv(["cache", "clean", *packages], cwd=Path("/"))
    if not result.ok:
        raise uverrors.failure(
            result,
            UvContext(
                f"cannot refresh uv's cache for {', '.join(packages)}",
                InstallError,
                fallback_hint="run `uv cache clean "
                + " ".join(packages)
                + "` by hand, then deploy --repair again",
            ),
        )


def sync_dependencies(
    stage: Path,
    env_dir: Path,
    python: Path,
    groups: Sequence[str],
    reinstall: Sequence[str] = (),
    *,
    inexact: bool = False,
) -> None:
    """Create ``env_dir`` and install the lock's third-party packages into it (not the members).
    ``inexact``: into a clone, whose installed members an exact sync would remove (the caller then
    removes what the lock dropped, :func:`uninstall`)."""
    result = run_uv(
        [
            "sync",
            "--frozen",
            "--all-packages",
            "--no-install-workspace",
            "--no-editable",
            *(["--inexact"] if inexact else []),
            *_group_args(groups),
            "--python",
            str(python),
            "--quiet",
            *[arg for name in reinstall for arg in ("--reinstall-package", name)],
        ],
        cwd=stage,
        env={"UV_PROJECT_ENVIRONMENT": str(env_dir)},
    )
    if not result.ok:
        raise uverrors.install_error(
            result,
            "the locked packages",
            "check that the index named in uv.lock is reachable from this host (or that uv's cache holds "
            "the package); the live environment was not touched",
            python,
        )


def build_wheel(
    stage: Path,
    name: str,
    path: str,
    out_dir: Path,
    python: Path,
    *,
    in_workspace: bool,
    source_date_epoch: int | None = None,
) -> Path:
    """Build one member's wheel from the staging copy into ``out_dir``."""
    # No --quiet: on failure the build backend's own output is what the operator needs to see.
    args = ["build", "--wheel", "--out-dir", str(out_dir), "--python", str(python)]
    args += ["--package", name] if in_workspace else [path]
    # SOURCE_DATE_EPOCH: the backends (setuptools' bdist_wheel, hatchling, flit) then stamp every
    # zip entry with it instead of the files' times, so the same sources give the same wheel.
    env = None if source_date_epoch is None else {"SOURCE_DATE_EPOCH": str(max(source_date_epoch, 315532800))}
    result = run_uv(args, cwd=stage, env=env)
    wheels = sorted(out_dir.glob("*.whl"))
    if not result.ok:
        uverrors.no_version(result, stage, [(name, path)])
    if not result.ok or len(wheels) != 1:
        # uv's own summary names the staging copy's path, which means nothing to the operator.
        detail = uverrors.tail(result).replace(str(stage), "<project>")
        diagnosed = classify(result.stderr, result.returncode)
        if result.ok or diagnosed.cause in (BUILD_FAILED, UV_FAILED):
            raise BuildError(
                f"member {name} ({path}/) failed to build",
                hint=f"the build backend's output is below; run `uv build --wheel {path}` in a checkout to "
                "see the whole log; the live environment was not touched",
                detail=detail,
                cause=BUILD_FAILED,
            )
        # Not the backend: the cache, the index (build requirements), the interpreter.
        error = uverrors.failure(
            result, UvContext(f"member {name} ({path}/) failed to build", BuildError, python=str(python))
        )
        error.detail = detail
        raise error
    return wheels[0]


def build_sdist_wheel(
    source: Path, label: str, out_dir: Path, python: Path, *, cwd: Path, source_date_epoch: int
) -> Path:
    """Build the wheel of an unpacked third-party sdist (``source``) into ``out_dir``.

    ``cwd`` is the project's staging copy: uv takes the index for the build requirements from the
    project's configuration there, as a sync building this sdist would. The build is isolated (uv's
    default) and ``--no-sources``: a published sdist is built as any installer builds it, and its
    own ``[tool.uv.sources]`` name its author's tree.
    """
    args = ["build", "--wheel", "--no-sources", "--out-dir", str(out_dir), "--python", str(python)]
    env = {"SOURCE_DATE_EPOCH": str(max(source_date_epoch, 315532800))}
    result = run_uv([*args, str(source)], cwd=cwd, env=env)
    wheels = sorted(out_dir.glob("*.whl"))
    if not result.ok or len(wheels) != 1:
        # uv's first line names the scratch copy; its last "cause:" says what went wrong.
        said = chain(result.stderr)
        reason = said[-1] if len(said) > 1 else classify(result.stderr, result.returncode).reason
        reason = reason.replace(str(source), "<sdist>")
        raise BuildError(
            f"{label}: the locked sdist failed to build into a wheel: {reason}",
            hint="the build backend's output is below; pack on a host that can build it (compilers, "
            "headers), or lock a version that publishes a wheel for the target",
            detail=uverrors.tail(result).replace(str(source), "<sdist>"),
            cause=BUILD_FAILED,
        )
    return wheels[0]


def install_wheels(stage: Path, env_dir: Path, wheels: Sequence[Path], *, reinstall: bool = False) -> None:
    """Install the members' wheels (no dependencies: the lock's sync brought those)."""
    result = run_uv(
        [
            "pip",
            "install",
            *(["--reinstall"] if reinstall else []),
            "--no-deps",
            "--offline",
            "--no-index",
            "--python",
            str(env_dir / "bin" / "python"),
            "--quiet",
            *map(str, wheels),
        ],
        cwd=stage,
    )
    if not result.ok:
        raise uverrors.failure(
            result,
            UvContext(
                "cannot install the workspace members",
                InstallError,
                fallback_hint="the live environment was not touched; see the output below",
            ),
        )


def uninstall(stage: Path, env_dir: Path, names: Sequence[str]) -> None:
    """Remove these distributions from ``env_dir`` (what the lock no longer installs, from a clone)."""
    result = run_uv(
        ["pip", "uninstall", "--python", str(env_dir / "bin" / "python"), "--quiet", *names], cwd=stage
    )
    if not result.ok:
        fallback = "the live environment was not touched; see the output below"
        what = f"cannot remove {', '.join(names)} from the new generation"
        raise uverrors.failure(result, UvContext(what, InstallError, fallback_hint=fallback))


def python_install_dir() -> str | None:
    """Where uv keeps the interpreters it manages (``uv python dir``), or None if uv cannot say."""
    result = run_uv(["python", "dir"], cwd=Path("/"))
    lines = result.stdout.strip().splitlines()
    return lines[-1] if result.ok and lines else None


def create_venv(env_dir: Path, python: str, *, allow_existing: bool = False) -> None:
    """``uv venv``: a new environment, or (``allow_existing``) venv files added to a directory in place.

    ``--allow-existing`` keeps whatever the directory holds (its packages, its scripts) and writes
    ``pyvenv.cfg``, the interpreter links and the activate scripts: how heal converts a package
    directory into a venv without reinstalling anything.
    """
    args = ["venv", "--quiet", "--python", python, "--no-project"]
    if allow_existing:
        args.append("--allow-existing")
    result = run_uv([*args, str(env_dir)], cwd=env_dir.parent)
    if not result.ok:
        raise uverrors.failure(
            result,
            UvContext(
                f"{env_dir}: uv cannot create a virtual environment",
                InstallError,
                python=python,
                fallback_hint=f"check that {python} runs and that {env_dir.parent} is writable",
            ),
        )


def install_requirements(
    python: Path, requirements: Sequence[str], *, reinstall: Sequence[str] = (), no_deps: bool = True
) -> None:
    """``uv pip install`` exactly these requirements into the environment of ``python``."""
    args = ["pip", "install", "--quiet", "--python", str(python)]
    if no_deps:
        args.append("--no-deps")
    args += [arg for name in reinstall for arg in ("--reinstall-package", name)]
    result = run_uv([*args, *requirements], cwd=python.parent)
    if not result.ok:
        raise uverrors.install_error(
            result,
            "the distributions",
            "check that the package index is reachable (or that uv's cache holds the package)",
        )


# -- venvkeeper update ---------------------------------------------------------------------------

# Generous: a relock fetches every locked package's index page afresh, and a slow index must not be
# mistaken for a dead one (uv's own HTTP timeouts and retries still apply).
_RELOCK_TIMEOUT_S = 900.0


def relock(stage: Path, upgrade: Sequence[str], python: Path) -> None:
    """Re-resolve the staging copy's uv.lock, letting only ``upgrade`` requests move.

    Each request is a package name with an optional specifier (``tinydb<1.3``): uv drops the
    locked preference for that package and takes the highest version the specifier and the
    project's own constraints allow (uv's ``--upgrade-package`` accepts a requirement since 0.4).
    ``python`` is the live generation's interpreter: uv's own discovery would follow a
    ``.python-version`` this host may not satisfy.
    """
    args = [
        "lock",
        "--quiet",
        "--python",
        str(python),
        *[arg for request in upgrade for arg in ("--upgrade-package", request)],
    ]
    result = run_uv(args, cwd=stage, timeout=_RELOCK_TIMEOUT_S)
    if result.ok:
        return
    diagnosed = classify(result.stderr, result.returncode)
    if diagnosed.cause == NO_SOLUTION:
        # uv names the package at fault on its "cause:" lines.
        said = chain(result.stderr)
        first, causes = (said[0], said[1:]) if said else (diagnosed.reason, [])
        raise LockError(
            f"uv could not re-lock: {first}" + (f": {' '.join(causes)}" if causes else ""),
            hint="the policy's bounds appear in uv's words as requirements of your project; allow the "
            "package a wider policy (or drop its pin) in [tool.venvkeeper.update.packages]; "
            "uv.lock was not changed",
            detail=uverrors.tail(result),
            cause=NO_SOLUTION,
        )
    raise uverrors.failure(
        result,
        UvContext("uv could not re-lock", LockError, python=str(python), untouched="uv.lock was not changed"),
    )


def export_file(stage: Path, fmt: str, groups: Sequence[str], python: Path, *, members: bool = True) -> bytes:
    """The lock exported as ``requirements.txt`` (hashed) or ``pylock.toml``.

    ``members=False`` leaves the workspace members out (a container's dependency layer).
    """
    extra = [] if members else ["--no-emit-workspace"]
    result = run_uv(
        [
            "export",
            "--frozen",
            "--python",
            str(python),
            "--all-packages",
            *_group_args(groups),
            *extra,
            "--format",
            fmt,
            "--quiet",
        ],
        cwd=stage,
    )
    if not result.ok:
        raise uverrors.failure(
            result,
            UvContext(
                f"uv.lock: cannot be exported as {fmt}",
                LockError,
                python=str(python),
                fallback_hint="run `uv lock`",
            ),
        )
    return result.stdout.encode()


def install_pylock(cwd: Path, python: Path, pylock: Path) -> None:
    """Install exactly a ``pylock.toml`` whose entries are local wheel files, with no network.

    uv reads PEP 751 locks behind a preview flag (0.13); the paths are relative to the lock file.
    """
    result = run_uv(
        [
            "pip",
            "sync",
            "--offline",
            "--no-index",
            "--preview-features",
            "pylock",
            "--python",
            str(python),
            "--quiet",
            str(pylock),
        ],
        cwd=cwd,
        env={"UV_OFFLINE": "1"},
    )
    if not result.ok:
        raise uverrors.install_error(
            result, "the bundle's packages", "the live environment was not touched; see the output below"
        )
