"""What verify finds in the live environment: update judges it before the run and after a failure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.generations import inspection

__all__ = ["Finding", "findings", "unchanged"]


class Finding(Protocol):
    @property
    def category(self) -> str: ...
    @property
    def distribution(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...


def findings(env: Path) -> Sequence[Finding]:
    """Every problem verify finds in ``env``; raises CannotVerifyError when it cannot look."""
    return inspection.verify(str(env)).findings


def unchanged(env: Path) -> bool:
    """The live environment is as it was deployed (False also when it cannot be checked)."""
    try:
        return not findings(env)
    except VenvkeeperError:
        return False
