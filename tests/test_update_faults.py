"""``venvkeeper update`` when something is wrong: bad input stops it before anything changes, and a
fault on the way is undone. In every case the lock keeps its bytes unless the update was committed,
the live environment is untouched unless it was deployed, and the report says which.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uv

from support.gitremote import head, log
from support.index import LocalIndex
from support.process import run
from support.smtp import SmtpServer, closed_port
from test_update import (
    FIRST_COMMIT,
    PROJECT,
    Service,
    deploy_service,
    parts,
    subject,
    update,
    use_mail,
)
from venvkeeper.gateways import uv as uvcmd
from vk import Outcome, vk


@pytest.fixture
def service(make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Service:
    return deploy_service(make_project, tmp_path, capsys)


@pytest.fixture
def mail(smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    use_mail(monkeypatch, smtp.port)
    return smtp


def assert_preflight_failed(
    result: Outcome, service: Service, check: str, mail: SmtpServer
) -> dict[str, Any]:
    """Exit 2 with ``check``; nothing changed; the failure is in the history and in the mail."""
    assert result.code == 2, result.out + result.err
    report = result.json
    assert (report["outcome"], report["check"], report["ok"]) == ("preflight-failed", check, False)
    assert report["lock"]["committed"] is None
    assert report["live"]["changed"] is False
    service.assert_lock_and_live_untouched()
    entry = service.history()[-1]
    assert (entry["outcome"], entry["check"], entry["exit_code"]) == ("preflight-failed", check, 2)
    assert len(mail.messages) == 1, report["notification"]
    (message,) = mail.messages
    assert message["Subject"].startswith(f"[venvkeeper] {report['host']} {PROJECT}: ")
    assert report["reason"] in parts(message)["text/plain"]
    return report


def test_not_a_git_repo(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], mail: SmtpServer
) -> None:
    service = deploy_service(make_project, tmp_path, capsys, git=False)
    result = update(capsys, service)
    report = assert_preflight_failed(result, service, "not-a-git-repo", mail)
    assert report["reason"] == f"{service.project}: not a git work tree; update commits the lock it tested"


def test_wrong_branch_as_cron_shows_it(
    service: Service, capsys: pytest.CaptureFixture[str], mail: SmtpServer
) -> None:
    run(["git", "checkout", "-q", "-b", "feature"], cwd=service.project)

    result = vk(capsys, "update", service.project, "--env", service.env)

    assert result.code == 2
    reason = f"{service.project}: on branch feature, expected main"
    assert result.error_line == f"error: preflight-failed: {reason}"
    assert "  lock: unchanged\n" in result.out
    assert "  live environment: unchanged\n" in result.out
    service.assert_lock_and_live_untouched()
    entry = service.history()[-1]
    assert (entry["outcome"], entry["check"], entry["reason"]) == ("preflight-failed", "wrong-branch", reason)
    (message,) = mail.messages
    assert message["Subject"].startswith("[venvkeeper] ")
    assert message["Subject"].endswith(f" {PROJECT}: preflight failed (wrong-branch)")
    assert reason in parts(message)["text/plain"]


def test_dirty_tree(service: Service, capsys: pytest.CaptureFixture[str], mail: SmtpServer) -> None:
    script = service.project / "check_deps.py"
    edited = script.read_text() + "# work in progress\n"
    script.write_text(edited)
    result = update(capsys, service)
    report = assert_preflight_failed(result, service, "dirty-tree", mail)
    assert "check_deps.py (modified)" in report["reason"]
    assert script.read_text() == edited


def test_corrupt_lock(service: Service, capsys: pytest.CaptureFixture[str], mail: SmtpServer) -> None:
    lock = service.project / "uv.lock"
    lock.write_text(lock.read_text()[:200] + "\n[[package\nname = ")
    service.commit_and_push("a merge gone wrong")
    result = update(capsys, service)
    report = assert_preflight_failed(result, service, "corrupt-lock", mail)
    assert report["reason"].startswith(f"{lock}: corrupt")


def test_failing_baseline_stops_the_update(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], mail: SmtpServer
) -> None:
    publish("tinydb", "1.2.1")
    service.refuse("tinydb", "1.2.0")
    result = update(capsys, service)
    report = assert_preflight_failed(result, service, "baseline-failed", mail)
    baseline = report["tests"]["baseline"]
    assert (baseline["ok"], baseline["exit_code"]) == (False, 1)
    assert "FAILED: tinydb 1.2.0 is refused" in baseline["output_tail"]
    assert report["tests"]["candidate"] is None
    # The update found is named, and was not judged, let alone applied.
    assert [(c["name"], c["new"]) for c in report["changes"]] == [("tinydb", "1.2.1")]
    assert "cannot be judged; nothing was changed" in report["reason"]


def test_no_usable_uv(
    service: Service,
    capsys: pytest.CaptureFixture[str],
    mail: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No uv anywhere venvkeeper looks: not in its own environment (the uv package), not $UV, not on
    # PATH (which keeps only git). uvcmd caches the lookup for the process: cleared before and after.
    bin_dir = tmp_path / "bin-without-uv"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git is not None
    (bin_dir / "git").symlink_to(git)

    def no_bundled_uv() -> str:
        raise FileNotFoundError("uv")

    with monkeypatch.context() as patched:
        patched.setattr(uv, "find_uv_bin", no_bundled_uv)
        patched.delenv("UV", raising=False)
        patched.setenv("PATH", str(bin_dir))
        uvcmd._locate_once.cache_clear()
        try:
            result = update(capsys, service)
        finally:
            uvcmd._locate_once.cache_clear()

    report = assert_preflight_failed(result, service, "uv-missing", mail)
    assert report["reason"].startswith("uv not found")


def test_unreachable_index_is_a_relock_failure(
    service: Service, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    index.stop()
    result = update(capsys, service)
    assert result.code == 1, result.out + result.err
    report = result.json
    assert (report["outcome"], report["check"]) == ("relock-failed", None)
    assert f"127.0.0.1:{index.port}" in report["reason"]
    assert report["lock"]["committed"] is None
    assert report["live"]["changed"] is False
    service.assert_lock_and_live_untouched()
    assert service.history()[-1]["outcome"] == "relock-failed"


def _gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie under a PID 1 that does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_hanging_tests_are_killed_with_their_process_group(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    publish("tinydb", "1.2.1")
    service.refuse("tinydb", "1.2.1", hang=True)

    started = time.monotonic()
    result = update(capsys, service, "--test-timeout", "2")
    elapsed = time.monotonic() - started

    # The tests would sleep for 300 s: the run ends once their 2 s are up.
    assert elapsed < 60
    assert result.code == 1, result.out + result.err
    report = result.json
    assert report["outcome"] == "tests-failed"
    assert "timed out" in report["reason"]
    candidate = report["tests"]["candidate"]
    assert (candidate["ok"], candidate["timed_out"]) == (False, True)
    assert candidate["duration_s"] < 10
    script_pid, sleep_pid = map(int, (service.project / "hang.pid").read_text().split())
    assert _gone(script_pid)
    assert _gone(sleep_pid)
    assert service.run_leftovers() == []
    assert report["lock"]["committed"] is None
    assert (report["live"]["changed"], report["live"]["verified"]) == (False, True)
    service.assert_lock_and_live_untouched()


def test_a_rejected_push_undoes_the_commit(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    service = deploy_service(make_project, tmp_path, capsys, rejecting=True)
    publish("tinydb", "1.2.1")

    result = update(capsys, service)

    assert result.code == 1, result.out + result.err
    report = result.json
    assert report["outcome"] == "push-rejected"
    assert "rejected" in report["reason"].lower()
    assert (report["lock"]["pushed"], report["lock"]["restored"]) == (False, True)
    assert report["live"]["changed"] is False
    # The branch is back where it was, the lock has its bytes, the tree is clean for the next run.
    service.assert_lock_and_live_untouched()
    assert log(service.project) == [FIRST_COMMIT]
    assert run(["git", "status", "--porcelain"], cwd=service.project).stdout == ""
    assert service.history()[-1]["outcome"] == "push-rejected"


def test_a_mail_server_that_is_down_does_not_undo_the_update(
    service: Service,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = closed_port()
    use_mail(monkeypatch, port)
    publish("tinydb", "1.2.1")

    result = update(capsys, service)

    assert result.code == 5, result.out + result.err
    report = result.json
    assert report["outcome"] == "updated"
    notification = report["notification"]
    assert notification["sent"] is False
    assert f"127.0.0.1:{port}" in notification["error"]
    assert "Connection refused" in notification["error"]
    # The update stands: committed, pushed, deployed.
    assert report["lock"]["committed"] == head(service.project)
    assert service.remote is not None
    assert service.remote.head() == head(service.project)
    assert report["live"]["generation"] == 2
    assert vk(capsys, "verify", "--env", service.env).code == 0
    assert service.imported_version("tinydb") == "1.2.1"
    entry = service.history()[-1]
    assert (entry["outcome"], entry["exit_code"]) == ("updated", 5)
    assert entry["notification"] == {"sent": False, "error": notification["error"]}


def test_a_second_run_at_once_is_busy(
    service: Service,
    tmp_path: Path,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    mail: SmtpServer,
) -> None:
    # The first run, a real process, holds the project while its baseline tests sleep (they run
    # because there is an update to judge).
    publish("tinydb", "1.2.1")
    started = tmp_path / "first-run-testing"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "venvkeeper",
            "update",
            str(service.project),
            "--env",
            str(service.env),
            "--json",
            "--test-command",
            f"touch {started}; sleep 3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never started its tests"
            time.sleep(0.05)
        running = json.loads((service.state / "update" / "running.json").read_text())
        assert running["pid"] == first.pid

        second = update(capsys, service)

        assert second.code == 3, second.out + second.err
        assert second.json["outcome"] == "busy"
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.kill(first.pid, 9)
            first.wait()
    assert first.returncode == 0, out + err
    assert json.loads(out)["outcome"] == "updated"
    assert sorted(entry["outcome"] for entry in service.history()) == ["busy", "updated"]
    assert service.run_leftovers() == []
    # Only the first run's outcome is mailed; the busy one is not.
    assert [m["Subject"] for m in mail.messages] == [subject(json.loads(out), "updated 1 package (patch)")]
