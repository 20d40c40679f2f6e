"""Lines printed by more than one path (kept apart so the no-op fast path can print them cheaply)."""

from __future__ import annotations

__all__ = ["unchanged_line", "would_not_change_line"]


def unchanged_line(env: str, generation: int | None, reason: str, duration_s: float) -> str:
    where = f" (generation {generation})" if generation is not None else ""
    return f"{env} is unchanged{where}: {reason} [{duration_s:.2f}s]\n"


def would_not_change_line(env: str, generation: int | None, reason: str, duration_s: float) -> str:
    """``--check``'s answer when nothing would change."""
    where = f" (generation {generation})" if generation is not None else ""
    return f"{env} would not change{where}: {reason} [{duration_s:.2f}s]\n"
