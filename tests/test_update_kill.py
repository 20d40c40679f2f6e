"""A run killed between writing the lock into the project and deploying it is undone by the next one.

The kill is real (SIGKILL, so no ``finally`` runs), at the moment git is asked to commit (the new
lock is already in the work tree) or to push (the commit exists, the remote has not seen it).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support.gitremote import head
from test_update import deploy_service, publish_releases, update
from vk import vk

_KILLED_AT = """
import os, signal, sys
from venvkeeper.gateways import git as gitcmd
from venvkeeper.cli.main import main

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

setattr(gitcmd, sys.argv.pop(1), killed)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("step", ["commit_paths", "push"])
def test_the_next_run_undoes_a_run_killed_before_the_push(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
    step: str,
) -> None:
    service = deploy_service(make_project, tmp_path, capsys)
    publish_releases(publish)
    argv = ["update", str(service.project), "--env", str(service.env), "--json"]

    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_AT, step, *argv],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # What the kill left: the new lock in the work tree (and, killed at the push, committed).
    assert service.lock_bytes() != service.lock
    assert (head(service.project) != service.head) is (step == "push")
    assert (service.state / "update" / "pending.json").is_file()

    result = update(capsys, service, "--dry-run")

    report = result.json
    assert result.code == 0, result.out + result.err
    expected = "before pushing" if step == "push" else "before committing"
    assert expected in report["recovered"]
    assert "uv.lock" in report["recovered"]
    assert report["outcome"] == "would-update"  # judged against the restored lock
    service.assert_lock_and_live_untouched()
    assert not (service.state / "update" / "pending.json").exists()
    assert service.history()[-1]["recovered"] == report["recovered"]


def test_a_live_environment_behind_the_checked_out_lock_is_refused(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
    uv_bin: Path,
) -> None:
    service = deploy_service(make_project, tmp_path, capsys)
    publish("tinyextra", "1.0.1")
    relock = subprocess.run(
        [str(uv_bin), "lock", "-q", "--upgrade-package", "tinyextra"],
        cwd=service.project,
        capture_output=True,
        check=False,
    )
    assert relock.returncode == 0, relock.stderr
    service.commit_and_push("take tinyextra 1.0.1 by hand, not deployed")

    result = update(capsys, service)

    report = result.json
    assert result.code == 2
    assert (report["outcome"], report["check"]) == ("preflight-failed", "env-not-current")
    assert f"venvkeeper deploy {service.project} --env {service.env}" in report["hint"]
    service.assert_lock_and_live_untouched()


def test_a_run_killed_while_the_candidate_is_tested_leaves_live_and_is_swept(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    """Killed while the tests run on the next generation (built, sealed, not recorded): the live
    environment is untouched, nothing was written to the project, and the next run removes the
    generation and the test environments that the kill left."""
    service = deploy_service(make_project, tmp_path, capsys)
    publish_releases(publish)
    # The shell the test command runs in is the update's child: $PPID is the update itself.
    tests = 'if [ "$VENVKEEPER_UPDATE" = candidate ]; then kill -KILL $PPID; exit 1; fi; python check_deps.py'
    argv = ["update", str(service.project), "--env", str(service.env), "--json", "--test-command", tests]

    killed = subprocess.run(
        [sys.executable, "-m", "venvkeeper", *argv], capture_output=True, text=True, timeout=180, check=False
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    service.assert_lock_and_live_untouched()
    generations = service.state / "generations"
    assert (generations / "0002").is_dir()  # the generation the tests were running on
    assert not (generations / "0002.json").exists()  # never recorded: nothing refers to it
    assert list((service.state / "update").glob("test-*"))

    result = update(capsys, service, "--dry-run")

    assert (result.code, result.json["outcome"]) == (0, "would-update"), result.out + result.err
    service.assert_lock_and_live_untouched()
    deployed = vk(capsys, "deploy", service.project, "--env", service.env, "--json")
    assert deployed.json["changed"] is False, deployed.out
    assert not (generations / "0002").exists()
    assert not list((service.state / "update").glob("test-*"))
