"""Shell commands (hooks, test suites): the timeout stops the whole process group, and only a test
suite's leftovers are killed when it ends; a hook may start a service in the background."""

from __future__ import annotations

import os
import time
from pathlib import Path

from venvkeeper.gateways.shell import run_shell


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone
    except FileNotFoundError:
        return False


def _gone(pid: int) -> bool:
    """The signal is delivered at once, but the process dies a moment later."""
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _background(tmp_path: Path) -> str:
    return f"sleep 30 >/dev/null 2>&1 & echo $! > {tmp_path / 'pid'}"


def test_a_hook_keeps_what_it_started_in_the_background(tmp_path: Path) -> None:
    done = run_shell(_background(tmp_path), cwd=tmp_path, env=os.environ, timeout=10)
    pid = int((tmp_path / "pid").read_text())
    try:
        assert done.exit_code == 0
        assert _alive(pid)
    finally:
        os.kill(pid, 9)


def test_a_test_suite_leaves_nothing_running(tmp_path: Path) -> None:
    done = run_shell(_background(tmp_path), cwd=tmp_path, env=os.environ, timeout=10, kill_leftovers=True)
    pid = int((tmp_path / "pid").read_text())
    assert done.exit_code == 0
    assert _gone(pid)


def test_the_timeout_stops_the_whole_group_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    started = time.monotonic()
    done = run_shell(
        f"echo started; {_background(tmp_path)}; sleep 30", cwd=tmp_path, env=os.environ, timeout=1, log=log
    )
    pid = int((tmp_path / "pid").read_text())
    assert time.monotonic() - started < 10
    assert done.exit_code is None
    assert _gone(pid)
    assert done.output.startswith(b"started\n")
    assert b"[venvkeeper: killed after 1s]" in done.output
    assert log.read_bytes() == done.output
    assert log.stat().st_mode & 0o777 == 0o640
