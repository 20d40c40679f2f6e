"""uvfailure reads uv's own words: each case here makes the real uv fail, then classifies its stderr.

The deploy-level tests (tests/test_uv_gateway.py) show the same causes end to end; these cover the
ones a deploy cannot provoke as root (permission denied), and the offline-only failure that used to
be misread as an out-of-date lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from venvkeeper.core.errors import InterpreterError, LockError, ToolError
from venvkeeper.gateways.uvfailure import (
    CACHE_UNUSABLE,
    INDEX_UNREACHABLE,
    INTERPRETER_MISSING,
    PERMISSION_DENIED,
    UvContext,
    classify,
    needs_network,
    uv_error,
)

UID = 65534


def _uv(uv_bin: Path, *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [uv_bin, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A root-owned, world-readable directory outside pytest's private temporary tree."""
    path = Path(tempfile.mkdtemp(prefix="vk-uvfailure-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run uv as an unprivileged uid (root may write anywhere)",
)
def test_permission_denied_names_the_path(uv_bin: Path, shared_dir: Path) -> None:
    cache = shared_dir / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    target = shared_dir / "root-owned" / "venv"
    target.parent.mkdir(mode=0o755)
    proc = subprocess.run(
        [
            *(
                "setpriv",
                f"--reuid={UID}",
                f"--regid={UID}",
                "--clear-groups",
                "env",
                "-i",
                "PATH=/usr/bin:/bin",
            ),
            *(f"UV_CACHE_DIR={cache}", "UV_PYTHON_DOWNLOADS=never", str(uv_bin), "venv", "--quiet"),
            *("--no-project", str(target)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=shared_dir,
    )
    assert proc.returncode != 0

    error = uv_error(proc.stderr, proc.returncode, UvContext("cannot create the environment", ToolError))

    assert error.cause == PERMISSION_DENIED
    assert str(target) in error.hint
    assert "Permission denied" in error.message
    assert not any(words in error.hint for words in ("install", "uv lock", "index"))


def test_an_unusable_cache_is_cache_unusable_and_names_it(uv_bin: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    stderr = _uv(
        uv_bin,
        *("pip", "install", "--dry-run", "--target", tmp_path / "t", "--python", sys.executable, "tinyutil"),
        env={"UV_CACHE_DIR": str(blocker / "cache")},
    )

    error = uv_error(stderr, 2, UvContext("uv failed", LockError, cache_dir=str(blocker / "cache")))

    assert error.cause == CACHE_UNUSABLE
    assert isinstance(error, ToolError)  # not the operation's "lock" error: the lock is fine
    assert str(blocker / "cache") in error.hint
    assert not any(words in error.hint for words in ("install", "uv lock", "index"))


def test_offline_only_failures_ask_for_the_network_and_are_not_out_of_date(
    uv_bin: Path, tmp_path: Path
) -> None:
    # A git source that is not in the (empty) cache, with --offline: uv says network connectivity
    # is disabled. That says nothing about the lock; before, it was read as "out of date".
    stderr = _uv(
        uv_bin,
        *("pip", "install", "--offline", "--dry-run", "--target", tmp_path / "t", "--python", sys.executable),
        "tinyutil @ git+https://example.invalid/tinyutil.git",
        env={"UV_CACHE_DIR": str(tmp_path / "cache")},
        cwd=tmp_path,
    )

    classified = classify(stderr, 2)

    assert needs_network(stderr)
    assert classified.cause == INDEX_UNREACHABLE
    assert "out of date" not in uv_error(stderr, 2, UvContext("uv.lock", LockError)).message


def test_a_missing_interpreter_is_interpreter_missing(uv_bin: Path, tmp_path: Path) -> None:
    stderr = _uv(uv_bin, "python", "find", str(tmp_path / "no-python"), env={"UV_PYTHON_DOWNLOADS": "never"})

    error = uv_error(stderr, 2, UvContext("no usable Python interpreter", LockError))

    assert error.cause == INTERPRETER_MISSING
    assert isinstance(error, InterpreterError)
    assert "--python" in error.hint
    assert "uv lock" not in error.hint


def test_an_unrecognised_failure_keeps_uvs_words_and_the_operations_hint() -> None:
    stderr = "error: something new went wrong\n  cause: the innermost reason\n"

    error = uv_error(stderr, 2, UvContext("uv.lock: uv cannot check it", LockError, fallback_hint="run X"))

    assert error.cause == "uv-failed"
    assert error.message == "uv.lock: uv cannot check it: something new went wrong: the innermost reason"
    assert error.hint == "run X"
