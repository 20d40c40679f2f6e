"""``[tool.venvkeeper.update]``: how a project wants its dependencies updated (docs/update.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from venvkeeper.core.config import reject_unknown
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.names import canonicalize_name
from venvkeeper.update import mail

__all__ = [
    "DEFAULT_KEEP_BACKUPS",
    "DEFAULT_TEST_TIMEOUT",
    "EXPORT_FORMATS",
    "POLICIES",
    "Export",
    "UpdateConfig",
    "parse_update_config",
]

POLICIES = ("patch", "minor", "major")
EXPORT_FORMATS = ("requirements.txt", "pylock.toml")
DEFAULT_TEST_TIMEOUT = 1800.0
DEFAULT_KEEP_BACKUPS = 10

_KEYS = {
    "policy",
    "test-command",
    "test-timeout",
    "test-groups",
    "branch",
    "remote",
    "keep-backups",
    "group",
    "group-write",
    "exports",
    "packages",
    "hosts",
    "notify",
    "security",
}


@dataclass(frozen=True)
class Export:
    format: str  # one of EXPORT_FORMATS
    path: str  # relative to the project root


@dataclass(frozen=True)
class UpdateConfig:
    policy: str = "patch"
    test_command: str | None = None
    test_timeout: float = DEFAULT_TEST_TIMEOUT
    test_groups: tuple[str, ...] | None = None  # None: "dev" when the lock defines it
    branch: str | None = None
    remote: str | None = None
    keep_backups: int = DEFAULT_KEEP_BACKUPS
    group: str | None = None
    group_write: bool = True
    exports: tuple[Export, ...] = ()
    # canonical name -> "exclude", "==VERSION" or a policy
    packages: dict[str, str] = field(default_factory=dict)
    # (fnmatch pattern on the hostname, groups), in the file's order: the first match wins
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    notify: Any = None  # mail.NotifyConfig, or None when the table is absent
    # How far past its policy a package may move to a version that fixes an advisory (update/security.py)
    security: str = "off"


def _fail(path: Path, key: str, wanted: str) -> ConfigError:
    return ConfigError(
        f"{path}: [tool.venvkeeper.update] {key} must be {wanted}", hint=f"fix {key} in {path}"
    )


def _groups(value: Any, path: Path, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, key, "a list of group names")
    return tuple(value)


def _package_rule(name: str, rule: Any, path: Path) -> str:
    key = f"packages.{name}"
    if not isinstance(rule, str):
        raise _fail(path, key, '"exclude", "==VERSION", "patch", "minor" or "major"')
    text: str = rule.strip()
    if text in POLICIES or text == "exclude":
        return text
    if text.startswith("=="):
        pinned = text[2:].strip()
        try:
            Version(pinned)
        except InvalidVersion:
            raise _fail(path, key, f'a pin with a valid version ("=={pinned}" is not one)') from None
        return "==" + pinned
    raise _fail(path, key, f'"exclude", "==VERSION", "patch", "minor" or "major", not "{text}"')


def _exports(value: Any, path: Path) -> tuple[Export, ...]:
    wanted = 'a list of {format = "requirements.txt" | "pylock.toml", path = "..."} tables'
    if not isinstance(value, list):
        raise _fail(path, "exports", wanted)
    out: list[Export] = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"format", "path"}:
            raise _fail(path, "exports", wanted)
        fmt, target = item["format"], item["path"]
        if fmt not in EXPORT_FORMATS or not isinstance(target, str) or not target.strip():
            raise _fail(path, "exports", wanted)
        relative = Path(target)
        # Never a file update must not overwrite: the lock, a pyproject.toml, git's own files.
        forbidden = relative.name in ("uv.lock", "pyproject.toml") or ".git" in relative.parts
        if relative.is_absolute() or ".." in relative.parts or forbidden:
            raise _fail(
                path,
                "exports",
                f'a new file inside the project (not uv.lock, pyproject.toml or .git), not "{target}"',
            )
        out.append(Export(fmt, relative.as_posix()))
    return tuple(out)


def _number(value: Any, path: Path, key: str, *, whole: bool = False) -> float:
    kinds = int if whole else (int, float)
    valid = isinstance(value, kinds) and not isinstance(value, bool)
    if not valid or value < (1 if whole else 0) or value == 0:
        raise _fail(path, key, "a whole number >= 1" if whole else "a number of seconds > 0")
    return float(value)


def _optional_str(table: dict[str, Any], key: str, path: Path) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _fail(path, key, "a non-empty string")
    return value


def parse_update_config(pyproject: dict[str, Any], path: Path) -> UpdateConfig:
    """Validate the table; every problem is a :class:`ConfigError` naming the key and the file."""
    table = pyproject.get("tool", {}).get("venvkeeper", {}).get("update", {})
    if not isinstance(table, dict):
        raise _fail(path, "", "a table")
    reject_unknown(table, _KEYS, "[tool.venvkeeper.update]", path)
    policy = table.get("policy", "patch")
    if policy not in POLICIES:
        raise _fail(path, "policy", '"patch", "minor" or "major"')
    packages_table = table.get("packages", {})
    if not isinstance(packages_table, dict):
        raise _fail(path, "packages", "a table of package = rule")
    hosts_table = table.get("hosts", {})
    if not isinstance(hosts_table, dict):
        raise _fail(path, "hosts", "a table of hostname pattern = [groups]")
    group_write = table.get("group-write", True)
    if not isinstance(group_write, bool):
        raise _fail(path, "group-write", "true or false")
    test_groups = table.get("test-groups")
    security = table.get("security", "off")
    if security not in ("off", *POLICIES):
        raise _fail(path, "security", '"off", "patch", "minor" or "major"')
    notify = table.get("notify")
    return UpdateConfig(
        policy=policy,
        test_command=_optional_str(table, "test-command", path),
        test_timeout=_number(table.get("test-timeout", DEFAULT_TEST_TIMEOUT), path, "test-timeout"),
        test_groups=None if test_groups is None else _groups(test_groups, path, "test-groups"),
        branch=_optional_str(table, "branch", path),
        remote=_optional_str(table, "remote", path),
        keep_backups=int(
            _number(table.get("keep-backups", DEFAULT_KEEP_BACKUPS), path, "keep-backups", whole=True)
        ),
        group=_optional_str(table, "group", path),
        group_write=group_write,
        exports=_exports(table.get("exports", []), path),
        packages={canonicalize_name(n): _package_rule(n, r, path) for n, r in packages_table.items()},
        hosts=tuple((pattern, _groups(g, path, f"hosts.{pattern}")) for pattern, g in hosts_table.items()),
        notify=None if notify is None else mail.parse_notify(notify, path),
        security=security,
    )
