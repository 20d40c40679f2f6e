"""How a failed uv operation is told: the package, member or interpreter it concerns, with uv's reason.

:mod:`venvkeeper.gateways.uvfailure` classifies uv's output; these helpers add what only the
operation knows (the staging copy to hide, the members whose version plugin found no git, the
requires-python the interpreter is outside of) and return or raise venvkeeper's one error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from venvkeeper.core.errors import InstallError, InterpreterError, VenvkeeperError, VersionError
from venvkeeper.gateways.uv import UvResult, uv_cache
from venvkeeper.gateways.uvfailure import BUILD_FAILED, INTERPRETER_UNSUPPORTED, UvContext, uv_error
from venvkeeper.project import vcsversion

__all__ = ["failure", "install_error", "no_version", "tail", "unsupported"]


def tail(result: UvResult, lines: int = 30) -> str:
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def failure(result: UvResult, ctx: UvContext, *, detail: bool = True) -> VenvkeeperError:
    """uv's failure as venvkeeper's error (:mod:`venvkeeper.gateways.uvfailure`), naming the cache in use."""
    if ctx.cache_dir is None:
        ctx = replace(ctx, cache_dir=uv_cache().dir)
    return uv_error(result.stderr, result.returncode, ctx, detail=tail(result) if detail else "")


def no_version(result: UvResult, stage: Path, members: Sequence[tuple[str, str]] | None) -> None:
    """Raise VersionError when the output shows a version plugin that found neither git nor PKG-INFO.

    ``members``: (name, path) of the members built; None for every member of the workspace.
    """
    output = result.stdout + "\n" + result.stderr
    if members is None:
        members = vcsversion.workspace_members(stage)
    explained = vcsversion.explain_failure(output, vcsversion.dynamic_versions(stage, members))
    if explained is not None:
        raise VersionError(
            explained[0],
            hint=explained[1],
            detail=tail(result).replace(str(stage), "<project>"),
            cause=BUILD_FAILED,
        )


_UNSUPPORTED = re.compile(
    r"resolved to Python (\S+), which is incompatible with the \w+'s Python requirement: `([^`]+)`"
)


def unsupported(result: UvResult, python: str, project: Path) -> None:
    """Raise when uv warned that the interpreter is outside the project's requires-python."""
    match = _UNSUPPORTED.search(result.stderr)
    if match is None:
        return
    version, spec = match.groups()
    raise InterpreterError(
        f"{python} is Python {version}, outside the project's requires-python {spec} "
        f"({project / 'pyproject.toml'})",
        hint="pass --python (or [tool.venvkeeper] python) with an interpreter that requires-python allows",
        cause=INTERPRETER_UNSUPPORTED,
    )


_PACKAGE_PATTERNS = (
    re.compile(r"Because ([A-Za-z0-9][\w.-]*?)(?:==\S+)? was not found"),
    re.compile(r"Failed to (?:download|fetch|build|prepare distributions for) [`']([^`']+)[`']"),
    re.compile(r"[`']([^`']+)[`'] (?:was not found|could not be found)"),
    re.compile(r"(?:distribution|package) [`']([^`']+)[`']", re.IGNORECASE),
)


def install_error(result: UvResult, default: str, hint: str, python: Path | None = None) -> VenvkeeperError:
    """One line naming the package uv could not install (when uv says which), with uv's reason."""
    package = next((m.group(1) for p in _PACKAGE_PATTERNS if (m := p.search(result.stderr))), None)
    return failure(
        result,
        UvContext(
            f"cannot install {package or default}",
            InstallError,
            python=None if python is None else str(python),
            fallback_hint=hint,
        ),
    )
