"""Exit codes, in one place (documented in README.md)."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    OK = 0
    # The command ran and failed: nothing at the environment changed (or it was switched back).
    FAILED = 1
    # Usage errors (click's own) and bad input: a missing or stale lock, an unknown group, no interpreter.
    BAD_INPUT = 2
    # Another venvkeeper holds the environment's lock and --no-wait was given.
    BUSY = 3
    # A post-deploy hook failed and the previous generation was restored.
    HOOK_FAILED = 4
    # update: the outcome stands (updated, or nothing to update) but the mail could not be sent.
    NOTIFY_FAILED = 5
    # deploy/install --check: the command would change something (0: nothing would change). A code
    # of its own, which no failure uses, for bundlewrap's `unless` and Ansible's check mode.
    WOULD_CHANGE = 6
