"""The exceptions venvkeeper raises, translated into one error line at the CLI boundary.

Every error carries a stable ``code`` (for ``--json`` and scripts), a message that names the file or
package at fault, and a ``hint`` that says how to fix it.
"""

from __future__ import annotations

from venvkeeper.core.exitcodes import ExitCode

TYPE_CHECKING = False  # typing is not imported at run time: verify's start-up is timed
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BuildError",
    "BusyError",
    "CannotInspectError",
    "CannotVerifyError",
    "ConfigError",
    "EnvironmentPathError",
    "HookError",
    "InstallError",
    "InterpreterError",
    "LockError",
    "SmokeCheckError",
    "ToolError",
    "VenvkeeperError",
    "VersionError",
    "unreadable_file",
]


class VenvkeeperError(Exception):
    """Base class: one line of message, one line of hint."""

    code = "error"
    exit_code = ExitCode.FAILED

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        detail: str = "",
        extra: dict[str, Any] | None = None,
        cause: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Longer output (a build log's tail, a hook's output) shown below the error line.
        self.detail = detail
        # What the command did before failing (e.g. the hooks that ran), for --json.
        self.extra = extra or {}
        # A stable name for the real cause of a failed uv run (venvkeeper.gateways.uvfailure.CAUSES), for
        # --json; empty where the code alone says it.
        self.cause = cause


class ConfigError(VenvkeeperError):
    """A pyproject.toml or option that cannot be used."""

    code = "config"
    exit_code = ExitCode.BAD_INPUT


class LockError(VenvkeeperError):
    """uv.lock missing, unreadable or out of date."""

    code = "lock"
    exit_code = ExitCode.BAD_INPUT


class InterpreterError(VenvkeeperError):
    """The requested Python interpreter cannot be found or used."""

    code = "interpreter"
    exit_code = ExitCode.BAD_INPUT


class EnvironmentPathError(VenvkeeperError):
    """The --env path cannot hold generations (parent missing or not writable, wrong kind of file)."""

    code = "env-path"
    exit_code = ExitCode.BAD_INPUT


class ToolError(VenvkeeperError):
    """uv or git is missing, too old, or failed in a way venvkeeper does not understand."""

    code = "tool"


class BuildError(VenvkeeperError):
    """A workspace member failed to build."""

    code = "build"


class InstallError(VenvkeeperError):
    """uv could not install the locked packages (index unreachable, package missing...)."""

    code = "install"


class SmokeCheckError(VenvkeeperError):
    """The new generation was built but does not start, import or run its scripts."""

    code = "smoke-check"


class HookError(VenvkeeperError):
    """A post-deploy hook failed; the previous generation was restored."""

    code = "hook"
    exit_code = ExitCode.HOOK_FAILED


class BusyError(VenvkeeperError):
    """Another venvkeeper process holds the environment's lock."""

    code = "busy"
    exit_code = ExitCode.BUSY


class CannotVerifyError(VenvkeeperError):
    """``verify`` could not inspect the environment at all (missing, not a venv, damaged manifest)."""

    code = "cannot-verify"
    exit_code = ExitCode.BAD_INPUT


class CannotInspectError(VenvkeeperError):
    """doctor or heal cannot look at the environment at all (exit 2: it says nothing about health)."""

    code = "cannot-inspect"
    exit_code = ExitCode.BAD_INPUT


class VersionError(BuildError):
    """A member's version is computed at build time (from git or PKG-INFO) and the tree has neither."""

    code = "version"
    exit_code = ExitCode.BAD_INPUT


def unreadable_file(exc: OSError) -> ConfigError:
    """A project file the deploying user cannot read (a root-owned 0400 file in the checkout, such as
    bundlewrap's ``.bundlewrap_git_deploy``): one line naming it, not a traceback."""
    return ConfigError(
        f"{exc.filename}: cannot be read by this user ({exc.strerror})",
        hint="a deploy copies and hashes every file the project tracks: make it readable to the user "
        "who deploys, or stop tracking it (git rm --cached, and list it in .gitignore)",
    )
