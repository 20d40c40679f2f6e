"""What an update run knows from its start, and how a step ends the run with an outcome.

Every step (:mod:`.preflight`, :mod:`.relock`, :mod:`.candidate`, :mod:`.ship`, :mod:`.notify`) takes the
:class:`Session` and the record the step before it returned. The session's ``result`` is the report: it
is filled as the run goes, not at its end, because a run stopped anywhere (SIGTERM, a failed step) must
still report, record and mail what it did so far.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from venvkeeper.core.errors import ConfigError
from venvkeeper.update.config import UpdateConfig, parse_update_config
from venvkeeper.update.plan import Change
from venvkeeper.update.result import UpdateResult
from venvkeeper.update.security import Advisories
from venvkeeper.update.store import UpdateStore

__all__ = ["Session", "Stop", "UpdateRequest", "count", "read_config", "refused"]


@dataclass(frozen=True)
class UpdateRequest:
    project_dir: Path
    env: Path
    policy: str | None = None  # None: the config's, else patch
    groups: tuple[str, ...] | None = None
    test_command: str | None = None
    test_timeout: float | None = None
    branch: str | None = None
    dry_run: bool = False
    push: bool = True
    # The project's advisory source, built by the command line (update never reads OSV data itself).
    advisories: Advisories | None = None


class Stop(Exception):  # noqa: N818 - an outcome, not an error
    """Ends a run with an outcome (everything already put back by whoever raises it)."""

    def __init__(self, outcome: str, reason: str, *, check: str | None = None, hint: str = "") -> None:
        super().__init__(reason)
        self.outcome, self.reason, self.check, self.hint = outcome, reason, check, hint


def refused(check: str, reason: str, hint: str = "") -> Stop:
    """A preflight check said no: nothing was changed."""
    return Stop("preflight-failed", reason, check=check, hint=hint)


def read_config(root: Path) -> UpdateConfig:
    """The update table, read from pyproject.toml alone: even a run stopped by a corrupt lock or a
    missing git repository can then mail the project's own recipients."""
    path = root / "pyproject.toml"
    try:
        return parse_update_config(tomllib.loads(path.read_text()), path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}", hint="fix pyproject.toml") from exc


@dataclass(frozen=True)
class Session:
    """One run's fixed facts: what was asked, where everything is, and the report being filled."""

    request: UpdateRequest
    result: UpdateResult
    store: UpdateStore
    root: Path  # the project, symlinks resolved
    given_root: Path  # the project as the operator named it (its env-file is found beside it)
    env: Path
    stamp: str  # names this run's lock backup and test logs
    config: UpdateConfig | None  # None: the update table could not be read (then ``config_error``)
    config_error: ConfigError | None
    # The state directory is swept, marked and recovered only when it is this project's environment's:
    # another project's (a mistyped --env) is left alone.
    ours: bool

    @property
    def candidate(self) -> Path:
        return self.store.candidate()

    def checked_config(self) -> UpdateConfig:
        """The update table, or the error that it cannot be read or is invalid."""
        if self.config is None:
            assert self.config_error is not None  # noqa: S101 - one of the two is set
            raise self.config_error
        return self.config

    def timed(self, name: str, started: float) -> None:
        durations = self.result.durations
        durations[name] = durations.get(name, 0.0) + time.monotonic() - started


def count(changes: list[Change]) -> str:
    return f"{len(changes)} package{'s' if len(changes) != 1 else ''}"
