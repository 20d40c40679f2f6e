"""``[tool.venvkeeper]`` in the root pyproject.toml: defaults for the command-line options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.core.errors import ConfigError

__all__ = ["DEFAULT_HOOK_TIMEOUT", "DEFAULT_KEEP", "Config", "Hooks", "parse_config", "reject_unknown"]

DEFAULT_KEEP = 3
DEFAULT_HOOK_TIMEOUT = 900.0

# audit: [tool.venvkeeper.audit] (osv, ignore), read by venvkeeper.audit.ignores.
_TOP_KEYS = {"groups", "python", "keep", "hooks", "update", "audit"}
_HOOK_KEYS = {"post-deploy", "directory", "timeout"}


@dataclass(frozen=True)
class Hooks:
    post_deploy: tuple[str, ...] = ()
    directory: str | None = None  # relative to the project root
    timeout: float = DEFAULT_HOOK_TIMEOUT


@dataclass(frozen=True)
class Config:
    groups: tuple[str, ...] = ()
    python: str | None = None
    keep: int | None = None
    hooks: Hooks = Hooks()


def _fail(path: Path, key: str, wanted: str) -> ConfigError:
    return ConfigError(f"{path}: [tool.venvkeeper] {key} must be {wanted}", hint=f"fix {key} in {path}")


def reject_unknown(table: dict[str, Any], known: set[str], where: str, path: Path) -> None:
    """One error naming the first key of ``table`` (the TOML table ``where``) that is not ``known``."""
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {where} {unknown[0]}", hint=f"known keys: {', '.join(sorted(known))}"
        )


def _str_list(value: Any, path: Path, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, key, "a list of non-empty strings")
    return tuple(value)


def parse_config(pyproject: dict[str, Any], path: Path) -> Config:
    table = pyproject.get("tool", {}).get("venvkeeper", {})
    if not isinstance(table, dict):
        raise _fail(path, "", "a table")
    reject_unknown(table, _TOP_KEYS, "[tool.venvkeeper]", path)
    groups = _str_list(table.get("groups", []), path, "groups")
    python = table.get("python")
    if python is not None and not isinstance(python, str):
        raise _fail(path, "python", "a version or a path, as a string")
    keep = table.get("keep")
    if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 0):
        raise _fail(path, "keep", "a whole number >= 0")
    hooks_table = table.get("hooks", {})
    if not isinstance(hooks_table, dict):
        raise _fail(path, "hooks", "a table")
    reject_unknown(hooks_table, _HOOK_KEYS, "[tool.venvkeeper.hooks]", path)
    directory = hooks_table.get("directory")
    if directory is not None and not isinstance(directory, str):
        raise _fail(path, "hooks.directory", "a path relative to the project, as a string")
    timeout = hooks_table.get("timeout", DEFAULT_HOOK_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise _fail(path, "hooks.timeout", "a number of seconds > 0")
    hooks = Hooks(
        _str_list(hooks_table.get("post-deploy", []), path, "hooks.post-deploy"), directory, float(timeout)
    )
    return Config(groups, python, keep, hooks)
