"""A very small argument parser for the paths that answer before click is imported.

It understands exactly ``--flag``, ``--option VALUE`` and ``--option=VALUE`` for the names given,
and returns None for anything else (``--help``, a typo, a missing value), so click then parses the
same arguments and gives its usual messages.
"""

from __future__ import annotations

TYPE_CHECKING = False  # collections.abc and typing are not imported at run time (timed paths)
if TYPE_CHECKING:
    from collections.abc import Collection, Sequence


__all__ = ["parse"]


def parse(
    args: Sequence[str],
    *,
    values: Collection[str],
    flags: Collection[str],
    repeatable: Collection[str] = (),
    max_positional: int = 0,
) -> dict[str, object] | None:
    """{option: value, flag: True, repeatable: [values], "positional": [...]}, or None."""
    found: dict[str, object] = {name: [] for name in repeatable}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in values:
            if not eq:
                if i + 1 >= len(args):
                    return None
                i += 1
                value = args[i]
            if name in repeatable:
                found[name].append(value)  # type: ignore[attr-defined]
            elif name in found:
                return None  # repeated: let click decide
            else:
                found[name] = value
        elif arg in flags:
            found[arg] = True
        elif arg.startswith("-") or len(positional) >= max_positional:
            return None
        else:
            positional.append(arg)
        i += 1
    found["positional"] = positional
    return found
