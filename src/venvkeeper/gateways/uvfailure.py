"""The one place that turns a failed uv run (its stderr and exit code) into venvkeeper's error.

uv reports a failure as an ``error:`` line followed by a chain of ``cause:`` lines, the innermost
(most specific) last. :func:`classify` reads that chain and names the real cause with a stable
string (``cause`` in ``--json`` errors); :func:`uv_error` builds the error: its class (hence its
code and exit status) from the cause where the cause decides it, the operation's otherwise; a
message with uv's own words; and a hint about that cause, never a guess about another one.

Pure: no uv is run here, so every class is tested from uv's real words (tests/test_uvfailure.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from venvkeeper.core.errors import (
    BuildError,
    InterpreterError,
    LockError,
    ToolError,
    VenvkeeperError,
)

__all__ = [
    "BUILD_FAILED",
    "CACHE_UNUSABLE",
    "CAUSES",
    "INDEX_UNREACHABLE",
    "INTERPRETER_MISSING",
    "INTERPRETER_UNSUPPORTED",
    "LOCK_OUT_OF_DATE",
    "NO_SOLUTION",
    "PACKAGE_UNAVAILABLE",
    "PERMISSION_DENIED",
    "UV_FAILED",
    "Classified",
    "UvContext",
    "chain",
    "classify",
    "error_lines",
    "needs_network",
    "uv_error",
]

CACHE_UNUSABLE = "cache-unusable"
INTERPRETER_MISSING = "interpreter-missing"
INTERPRETER_UNSUPPORTED = "interpreter-unsupported"
LOCK_OUT_OF_DATE = "lock-out-of-date"
NO_SOLUTION = "no-solution"
INDEX_UNREACHABLE = "index-unreachable"
BUILD_FAILED = "build-failed"
PERMISSION_DENIED = "permission-denied"
PACKAGE_UNAVAILABLE = "package-unavailable"  # the index answers, but not with the locked file
UV_FAILED = "uv-failed"  # none of the above: uv's own words are all there is

CAUSES = (
    CACHE_UNUSABLE,
    INTERPRETER_MISSING,
    INTERPRETER_UNSUPPORTED,
    LOCK_OUT_OF_DATE,
    NO_SOLUTION,
    INDEX_UNREACHABLE,
    PACKAGE_UNAVAILABLE,
    BUILD_FAILED,
    PERMISSION_DENIED,
    UV_FAILED,
)

# In the order they are tried: a cause that explains the others comes first. An unreachable index
# shows up inside a "No solution found" chain ("hatchling was not found in the cache"), and an
# unusable cache inside almost anything.
_CACHE = re.compile(
    r"Failed to initialize cache at|cache directory .* (?:is not|not) (?:writable|a directory)"
)
_UNSUPPORTED = re.compile(r"incompatible with the (?:project|workspace)'s Python requirement")
_MISSING = re.compile(
    r"No interpreter found|Failed to inspect Python interpreter|No Python at|"
    r"No download found for request|Python downloads are not allowed|"
    r"python-build-standalone|Failed to query Python interpreter"
)
_OUT_OF_DATE = re.compile(r"needs to be updated, but `--(?:check|locked)` was provided")
_NETWORK = re.compile(
    r"Network connectivity is disabled|network was disabled|was not found in the cache|"
    r"error sending request|Failed to fetch|Failed to download|tcp connect error|dns error|"
    r"Connection refused|timed out|operation timed out|Could not connect|HTTP status server error|"
    r"(?:502|503|504) (?:Bad Gateway|Service Unavailable|Gateway Timeout)",
    re.IGNORECASE,
)
_UNAVAILABLE = re.compile(r"HTTP status client error \((?:404|410)|was not found in the package registry")
_OFFLINE_ONLY = re.compile(
    r"Network connectivity is disabled|network was disabled|was not found in the cache", re.IGNORECASE
)
_BUILD = re.compile(r"Failed to build|Build backend failed|build backend returned an error|Failed to prepare")
_NO_SOLUTION = re.compile(r"No solution found")
_DENIED = re.compile(r"Permission denied|Read-only file system|Operation not permitted")
_PATH_IN = re.compile(r"`([^`]+)`")


def error_lines(stderr: str) -> list[str]:
    """uv's stderr without blank lines, each stripped."""
    return [line.strip() for line in stderr.splitlines() if line.strip()]


_CAUSE_PREFIXES = ("cause:", "Caused by:", "╰─▶")


def chain(stderr: str) -> list[str]:
    """uv's ``error:`` line and its ``cause:`` lines, innermost last, without their prefixes (uv
    prints ``╰─▶`` instead of ``cause:`` on a terminal)."""
    found: list[str] = []
    for line in error_lines(stderr):
        if line.startswith("error:"):
            found.append(line.removeprefix("error:").strip())
        elif found and line.startswith(_CAUSE_PREFIXES):
            prefix = next(p for p in _CAUSE_PREFIXES if line.startswith(p))
            found.append(line.removeprefix(prefix).strip())
    return found


def _reason(stderr: str, returncode: int) -> str:
    """uv's reason in one line: its error line, and the innermost cause when there is one."""
    said = chain(stderr)
    if not said:
        lines = error_lines(stderr)
        return lines[-1] if lines else f"uv exited with status {returncode}"
    if len(said) == 1 or said[-1] in said[0]:
        return said[0]
    return f"{said[0]}: {said[-1]}"


@dataclass(frozen=True)
class Classified:
    cause: str
    reason: str  # uv's own words, one line


def classify(stderr: str, returncode: int) -> Classified:
    """Name the real cause of uv's failure from what it printed."""
    # Whitespace folded: a wrapped line (uv honours $COLUMNS) must still match.
    text = " ".join(stderr.split())
    reason = _reason(stderr, returncode)
    if _CACHE.search(text):
        cause = CACHE_UNUSABLE
    elif _UNSUPPORTED.search(text):
        cause = INTERPRETER_UNSUPPORTED
    elif _MISSING.search(text):
        cause = INTERPRETER_MISSING
    elif _OUT_OF_DATE.search(text):
        cause = LOCK_OUT_OF_DATE
    elif _UNAVAILABLE.search(text) and not _OFFLINE_ONLY.search(text):
        cause = PACKAGE_UNAVAILABLE
    elif _NETWORK.search(text):
        cause = INDEX_UNREACHABLE
    elif _BUILD.search(text):
        cause = BUILD_FAILED
    elif _NO_SOLUTION.search(text):
        cause = NO_SOLUTION
    elif _DENIED.search(text):
        cause = PERMISSION_DENIED
    else:
        cause = UV_FAILED
    return Classified(cause, reason)


def needs_network(stderr: str) -> bool:
    """uv failed only because ``--offline`` kept it from fetching something (not for another cause)."""
    text = " ".join(stderr.split())
    return bool(_OFFLINE_ONLY.search(text)) and not _CACHE.search(text)


@dataclass(frozen=True)
class UvContext:
    """What the failed uv call was doing, for the message and the hints."""

    what: str  # the message's subject, e.g. "uv.lock: cannot be checked"
    error: type[VenvkeeperError]  # the operation's own class, where the cause does not decide
    cache_dir: str | None = None  # where uv's cache was (named by the cache-unusable hint)
    python: str | None = None  # the interpreter the command resolved
    project: str | None = None  # the project directory the user knows (for `uv lock` hints)
    fallback_hint: str = ""  # the operation's hint for a cause nothing here recognises
    untouched: str = "the live environment was not touched"


def _hint(cause: str, classified: Classified, ctx: UvContext) -> str:  # noqa: PLR0911 - one per cause
    where = f" in {ctx.project}" if ctx.project else ""
    if cause == CACHE_UNUSABLE:
        paths = _PATH_IN.findall(classified.reason)
        cache = ctx.cache_dir or (paths[0] if paths else "uv's cache directory")
        return (
            f"uv's cache {cache} cannot be created or written by this user; make it writable, or set "
            "UV_CACHE_DIR to a writable directory (unset, venvkeeper picks one itself)"
        )
    if cause == INTERPRETER_UNSUPPORTED:
        return (
            "pass --python with an interpreter inside the project's requires-python "
            "(or widen requires-python)"
        )
    if cause == INTERPRETER_MISSING:
        return (
            "install that Python (pyenv install X.Y, uv python install X.Y) or pass --python /path/to/python"
        )
    if cause == LOCK_OUT_OF_DATE:
        return f"run `uv lock`{where} and commit uv.lock; venvkeeper never re-resolves"
    if cause == INDEX_UNREACHABLE:
        return (
            "check that the index named in uv.lock is reachable from this host (proxy, DNS, "
            f"credentials), or that uv's cache holds the package; {ctx.untouched}"
        )
    if cause == PACKAGE_UNAVAILABLE:
        return (
            "the index named in uv.lock is reachable but no longer serves that file (removed or yanked); "
            f"publish it again there, or re-lock with `uv lock`; {ctx.untouched}"
        )
    if cause == BUILD_FAILED:
        return f"the build backend's output is below; fix the build and deploy again; {ctx.untouched}"
    if cause == NO_SOLUTION:
        return (
            "uv found no set of versions that satisfies the requirements (its reasons are below); "
            f"{ctx.untouched}"
        )
    if cause == PERMISSION_DENIED:
        paths = _PATH_IN.findall(classified.reason)
        named = paths[-1] if paths else "the path uv names"
        return f"this user may not write {named}; check its owner and mode (or run as the owner)"
    return ctx.fallback_hint or f"see uv's output below; {ctx.untouched}"


def _error_class(cause: str, ctx: UvContext) -> type[VenvkeeperError]:
    if cause in (INTERPRETER_MISSING, INTERPRETER_UNSUPPORTED):
        return InterpreterError
    if cause == LOCK_OUT_OF_DATE:
        return LockError
    if cause == CACHE_UNUSABLE:
        return ToolError
    if cause == BUILD_FAILED and ctx.error is not LockError:
        return BuildError
    return ctx.error


def uv_error(stderr: str, returncode: int, ctx: UvContext, *, detail: str = "") -> VenvkeeperError:
    """The error for a failed uv run: class, message with uv's reason, hint for the real cause."""
    classified = classify(stderr, returncode)
    cls = _error_class(classified.cause, ctx)
    return cls(
        f"{ctx.what}: {classified.reason}",
        hint=_hint(classified.cause, classified, ctx),
        detail=detail,
        cause=classified.cause,
    )
