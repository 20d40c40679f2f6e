"""The no-op deploy's answer as the fast path prints it: without dataclasses, enum or json.

``--json`` through :mod:`venvkeeper.cli.render` builds a ``DeployResult`` (dataclasses) and prints it
with :mod:`json`, whose import alone loads ``re``, ``enum`` and ``functools``: together more than
twice what the rest of a no-op deploy costs beyond Python's start-up. Here the same object is a
plain dict with the keys of ``DeployResult.to_json()`` in the same order, and :func:`dumps` writes
exactly what ``json.dumps(obj, indent=2)`` writes, with the C string encoder json itself uses.
``tests/test_fastpath.py`` holds both to that: this answer equals the full path's for the same no-op,
key for key, and :func:`dumps` equals ``json.dumps`` byte for byte.
"""

from __future__ import annotations

# json.encoder's own accelerator (CPython); json falls back to a pure-Python encoder without it.
try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # pragma: no cover - an interpreter without CPython's _json
    from json.encoder import py_encode_basestring_ascii as _quote

TYPE_CHECKING = False  # typing is not imported at run time: this path is timed
if TYPE_CHECKING:
    from typing import Any

__all__ = ["dumps", "unchanged_json"]

# core.results.JSON_SCHEMA_VERSION (that module loads enum through core.exitcodes); the test compares.
_SCHEMA_VERSION = 1
_INDENT = "  "


def unchanged_json(
    env: str,
    generation: int | None,
    reason: str,
    *,
    in_place: bool,
    duration_s: float,
    check: bool = False,
    diff: bool = False,
) -> dict[str, Any]:
    """``DeployResult(changed=False, ...).to_json()`` for an unchanged deploy: nothing added, removed,
    rebuilt or run, no uv (so no uv cache); ``CheckResult``'s with ``check`` (--check), with the
    empty ``diff`` of --diff."""
    found = {
        "schema_version": _SCHEMA_VERSION,
        "command": "deploy",
        "ok": True,
        "exit_code": 0,
        "env": env,
        "changed": False,
        "generation": generation,
        "previous": generation,
        "reason": reason,
        "added": [],
        "removed": [],
        "packages": {"added": [], "removed": [], "changed": []},
        "rebuilt": [],
        "reused": [],
        "hooks": [],
        "adopted": None,
        "pruned": [],
        "in_place": in_place,
        "repair_findings": 0,
        "repaired": [],
        "cache_refreshed": [],
        "uv_cache": None,
        "duration_s": round(duration_s, 3),
    }
    if diff:
        found["diff"] = {"before": "", "after": ""}
    if check:
        found["check"] = True
    return found


def dumps(value: Any, level: int = 0) -> str:
    """``json.dumps(value, indent=2)`` for dicts with str keys, lists, str, int, float, bool and None."""
    if isinstance(value, dict | list | tuple):
        return _container(value, level)
    return _scalar(value)


def _container(value: dict[str, Any] | list[Any] | tuple[Any, ...], level: int) -> str:
    if isinstance(value, dict):
        opening, closing = "{", "}"
        parts = [f"{_key(k)}: {dumps(v, level + 1)}" for k, v in value.items()]
    else:
        opening, closing = "[", "]"
        parts = [dumps(v, level + 1) for v in value]
    if not parts:
        return opening + closing
    inner = "\n" + _INDENT * (level + 1)
    return f"{opening}{inner}{(',' + inner).join(parts)}\n{_INDENT * level}{closing}"


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(_quote(value))
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, not {type(key).__name__}")
    return str(_quote(key))


def _float(value: float) -> str:
    # As json.encoder.floatstr with allow_nan=True.
    if value != value:  # noqa: PLR0124 - NaN is the one float unequal to itself
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)
