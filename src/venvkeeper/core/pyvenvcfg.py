"""``pyvenv.cfg``: read it as CPython's ``site`` does, and change keys without touching the rest.

CPython reads ``key = value`` lines and ignores the others (``site.venv``); a line we cannot read
is reported by doctor because a hand-edited file is usually where an environment went wrong.
"""

from __future__ import annotations

__all__ = ["PyvenvCfg", "parse", "render_updated"]


class PyvenvCfg:
    def __init__(self, values: dict[str, str], bad_lines: list[str]) -> None:
        self.values = values  # keys lower-cased, as site.py compares them
        self.bad_lines = bad_lines  # lines that are neither blank, a comment, nor key = value


def parse(text: str) -> PyvenvCfg:
    values: dict[str, str] = {}
    bad: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, eq, value = stripped.partition("=")
        if not eq or not key.strip():
            bad.append(line)
            continue
        values[key.strip().lower()] = value.strip()
    return PyvenvCfg(values, bad)


def render_updated(text: str, updates: dict[str, str], *, drop_bad: bool) -> str:
    """``text`` with each key in ``updates`` set (in place, or appended), other lines kept as they were."""
    out: list[str] = []
    pending = dict(updates)
    for line in text.splitlines():
        stripped = line.strip()
        key, eq, _value = stripped.partition("=")
        name = key.strip().lower()
        if stripped and not stripped.startswith("#") and (not eq or not name):
            if not drop_bad:
                out.append(line)
            continue
        if eq and name in pending:
            out.append(f"{key.strip()} = {pending.pop(name)}")
        elif not eq or name not in updates:  # a key given twice keeps its first, updated, line only
            out.append(line)
    out.extend(f"{key} = {value}" for key, value in pending.items())
    return "\n".join(out) + "\n"
