"""The base of every command's result: an exit code and one JSON envelope.

A plain class (not a dataclass) so that ``verify``, which is timed, need not import dataclasses;
the other results (:mod:`venvkeeper.generations.results`) are dataclasses built on it.
"""

from __future__ import annotations

from venvkeeper.core.exitcodes import ExitCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["JSON_SCHEMA_VERSION", "Result"]

JSON_SCHEMA_VERSION = 1


class Result:
    command: str

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "command": self.command,
            # --check's "would change" (exit 6) is an answer, not a failure.
            "ok": self.exit_code in (ExitCode.OK, ExitCode.WOULD_CHANGE),
            "exit_code": int(self.exit_code),
            **self.payload(),
        }
