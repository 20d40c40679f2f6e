"""The uv operations a deploy is made of, each turning uv's failure into one clear error.

Everything here runs through :func:`venvkeeper.uvcmd.run_uv`, in a staging copy of the project
(never in the source tree), with the lock frozen: uv never re-resolves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from venvkeeper.errors import BuildError, InstallError, InterpreterError, LockError, VersionError
from venvkeeper.uvcmd import UvResult, run_uv

__all__ = [
    "build_wheel",
    "cache_dir",
    "check_lock",
    "clean_cache",
    "create_venv",
    "export_digest",
    "export_file",
    "export_requirements",
    "find_python",
    "install_pylock",
    "install_requirements",
    "install_wheels",
    "python_install_dir",
    "relock",
    "sync_dependencies",
]


def _error_lines(result: UvResult) -> list[str]:
    return [line.strip() for line in result.stderr.splitlines() if line.strip()]


def _first_error(result: UvResult) -> str:
    lines = _error_lines(result)
    for line in lines:
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    return lines[-1] if lines else f"uv exited with status {result.returncode}"


def _tail(result: UvResult, lines: int = 30) -> str:
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def _group_args(groups: Sequence[str]) -> list[str]:
    """The dev group is left out unless asked for (uv's --no-dev wins over --group dev, so it goes)."""
    args = [arg for group in groups for arg in ("--group", group)]
    return args if "dev" in groups else ["--no-dev", *args]


def check_lock(stage: Path, lock_path: Path, stale: Path | None) -> None:
    """Fail unless uv.lock is current for every member's pyproject.toml (``uv lock --check``)."""
    result = run_uv(["lock", "--check", "--offline", "--quiet"], cwd=stage)
    if result.ok:
        return
    message = _first_error(result)
    if "needs to be updated" in message or "Network connectivity is disabled" in message:
        against = f" with {stale}" if stale else ""
        raise LockError(
            f"{lock_path}: out of date{against}",
            hint=f"run `uv lock` in {lock_path.parent} and commit uv.lock; venvkeeper never re-resolves",
        )
    _no_version(result, stage, None)
    raise LockError(f"{lock_path}: uv cannot use it: {message}", hint=f"run `uv lock` in {lock_path.parent}")


def _no_version(result: UvResult, stage: Path, members: Sequence[tuple[str, str]] | None) -> None:
    """Raise VersionError when the output shows a version plugin that found neither git nor PKG-INFO.

    ``members``: (name, path) of the members built; None for every member of the workspace.
    """
    from venvkeeper import vcsversion  # noqa: PLC0415

    output = result.stdout + "\n" + result.stderr
    if members is None:
        members = vcsversion.workspace_members(stage)
    explained = vcsversion.explain_failure(output, vcsversion.dynamic_versions(stage, members))
    if explained is not None:
        raise VersionError(
            explained[0], hint=explained[1], detail=_tail(result).replace(str(stage), "<project>")
        )


def find_python(stage: Path, request: str | None) -> Path:
    """The interpreter uv would use for this project: ``request``, else .python-version/requires-python."""
    args = ["python", "find"]
    if request:
        args.append(request)
    result = run_uv(args, cwd=stage)
    found = result.stdout.strip().splitlines()
    if not result.ok or not found:
        wanted = f"'{request}'" if request else "the project's requires-python"
        raise InterpreterError(
            f"no usable Python interpreter for {wanted}: {_first_error(result)}",
            hint="install it (pyenv install X.Y, uv python install X.Y) or pass --python /path/to/python",
        )
    return Path(found[-1])


def _export(cwd: Path, groups: Sequence[str], *extra: str) -> str:
    result = run_uv(
        [
            "export",
            "--frozen",
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
        raise LockError(f"uv.lock: cannot be read for export: {_first_error(result)}", hint="run `uv lock`")
    return result.stdout


def export_digest(stage: Path, groups: Sequence[str]) -> str:
    """sha256 of exactly what the lock installs for these groups (uv's hashed export).

    A lock change that does not touch the selected groups (a dev tool bumped) gives the same digest,
    so it does not cause a new generation.
    """
    return hashlib.sha256(_export(stage, groups).encode()).hexdigest()


def export_requirements(project: Path, groups: Sequence[str]) -> str:
    """The lock's third-party packages for these groups, as requirement lines with markers.

    ``--frozen`` reads uv.lock as it is and writes nothing, so this runs in the project itself.
    """
    return _export(project, groups, "--no-hashes")


def cache_dir() -> str | None:
    """uv's cache directory as uv would use it now, or None if uv cannot say."""
    result = run_uv(["cache", "dir"], cwd=Path("/"))
    lines = result.stdout.strip().splitlines()
    return lines[-1] if result.ok and lines else None


def clean_cache(packages: Sequence[str]) -> None:
    """Drop uv's cached files for ``packages``, so the next install fetches them afresh.

    uv installs by hard-linking from its cache, so a file edited inside an environment edits the
    cache too, and every later install would copy the damage; removing the entries is the remedy.
    """
    if not packages:
        return
    result = run_uv(["cache", "clean", *packages], cwd=Path("/"))
    if not result.ok:
        raise InstallError(
            f"cannot refresh uv's cache for {', '.join(packages)}: {_first_error(result)}",
            hint="run `uv cache clean " + " ".join(packages) + "` by hand, then deploy --repair again",
            detail=_tail(result),
        )


_PACKAGE_PATTERNS = (
    re.compile(r"Because ([A-Za-z0-9][\w.-]*?)(?:==\S+)? was not found"),
    re.compile(r"Failed to (?:download|fetch|build|prepare distributions for) [`']([^`']+)[`']"),
    re.compile(r"[`']([^`']+)[`'] (?:was not found|could not be found)"),
    re.compile(r"(?:distribution|package) [`']([^`']+)[`']", re.IGNORECASE),
)


def sync_dependencies(
    stage: Path, env_dir: Path, python: Path, groups: Sequence[str], reinstall: Sequence[str] = ()
) -> None:
    """Create ``env_dir`` and install the lock's third-party packages into it (not the members)."""
    result = run_uv(
        [
            "sync",
            "--frozen",
            "--all-packages",
            "--no-install-workspace",
            "--no-editable",
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
        raise _install_error(
            result,
            "the locked packages",
            "check that the index named in uv.lock is reachable from this host (or that uv's cache holds "
            "the package); the live environment was not touched",
        )


def _install_error(result: UvResult, default: str, hint: str) -> InstallError:
    """One line naming the package uv could not install (when uv says which), with uv's reason."""
    package = next((m.group(1) for p in _PACKAGE_PATTERNS if (m := p.search(result.stderr))), None)
    return InstallError(
        f"cannot install {package or default}: {_first_error(result)}", hint=hint, detail=_tail(result)
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
        _no_version(result, stage, [(name, path)])
    if not result.ok or len(wheels) != 1:
        # uv's own summary names the staging copy's path, which means nothing to the operator.
        raise BuildError(
            f"member {name} ({path}/) failed to build",
            hint=f"run `uv build --wheel {path}` in a checkout to see the whole log; the live environment "
            "was not touched",
            detail=_tail(result).replace(str(stage), "<project>"),
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
        raise InstallError(
            f"cannot install the workspace members: {_first_error(result)}",
            hint="the live environment was not touched; see the output below",
            detail=_tail(result),
        )


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
        raise InstallError(
            f"{env_dir}: uv cannot create a virtual environment: {_first_error(result)}",
            hint=f"check that {python} runs and that {env_dir.parent} is writable",
            detail=_tail(result),
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
        raise _install_error(
            result,
            "the distributions",
            "check that the package index is reachable (or that uv's cache holds the package)",
        )


# -- venvkeeper update ---------------------------------------------------------------------------

# Generous: a relock fetches every locked package's index page afresh, and a slow index must not be
# mistaken for a dead one (uv's own HTTP timeouts and retries still apply).
_RELOCK_TIMEOUT_S = 900.0


def relock(stage: Path, upgrade: Sequence[str]) -> None:
    """Re-resolve the staging copy's uv.lock, letting only ``upgrade`` requests move.

    Each request is a package name with an optional specifier (``tinydb<1.3``): uv drops the
    locked preference for that package and takes the highest version the specifier and the
    project's own constraints allow (uv's ``--upgrade-package`` accepts a requirement since 0.4).
    """
    args = ["lock", "--quiet", *[arg for request in upgrade for arg in ("--upgrade-package", request)]]
    result = run_uv(args, cwd=stage, timeout=_RELOCK_TIMEOUT_S)
    if result.ok:
        return
    # uv names the package at fault on its "cause:" line (without a terminal, "╰─▶" with one).
    causes = [
        line.split(":", 1)[1].strip() if line.startswith("cause:") else line.removeprefix("╰─▶").strip()
        for line in _error_lines(result)
        if line.startswith(("cause:", "╰─▶"))
    ]
    message = _first_error(result) + (f": {' '.join(causes)}" if causes else "")
    if "No solution found" in message:
        hint = (
            "the policy's bounds appear in uv's words as requirements of your project; allow the package "
            "a wider policy (or drop its pin) in [tool.venvkeeper.update.packages]; uv.lock was not changed"
        )
    else:
        hint = "check that the package index is reachable from this host; uv.lock was not changed"
    raise LockError(f"uv could not re-lock: {message}", hint=hint, detail=_tail(result))


def export_file(stage: Path, fmt: str, groups: Sequence[str], *, members: bool = True) -> bytes:
    """The lock exported as ``requirements.txt`` (hashed) or ``pylock.toml``.

    ``members=False`` leaves the workspace members out (a container's dependency layer).
    """
    extra = [] if members else ["--no-emit-workspace"]
    result = run_uv(
        ["export", "--frozen", "--all-packages", *_group_args(groups), *extra, "--format", fmt, "--quiet"],
        cwd=stage,
    )
    if not result.ok:
        raise LockError(f"uv.lock: cannot be exported as {fmt}: {_first_error(result)}", hint="run `uv lock`")
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
        raise _install_error(
            result, "the bundle's packages", "the live environment was not touched; see the output below"
        )
