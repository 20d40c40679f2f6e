"""Generations: keep, rollback, status, adopting a plain venv, --in-place, one deploy at a time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.process import run
from venvkeeper.gateways.uv import find_uv
from vk import generations, run_in_env, site_packages, snapshot, vk


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("workspace")


def _edit(project: Path, marker: str) -> None:
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    text = init.read_text()
    init.write_text(text.replace('print(f"webapp ', f'print(f"webapp {marker} ', 1))


def test_keep_prunes_old_generations_and_rollback_goes_back(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".venv"
    for n in range(1, 5):
        _edit(project, f"v{n}")
        report = vk(capsys, "deploy", project, "--env", env, "--keep", "2", "--json").json
        assert report["generation"] == n
    assert report["pruned"] == [1]
    assert generations(env) == ["0002", "0002.json", "0003", "0003.json", "0004", "0004.json"]
    assert run_in_env(env, "webapp").stdout.startswith("webapp v4 v3 v2 v1 0.1.0")

    result = vk(capsys, "rollback", "--env", env)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"{env} -> generation 3 (was 4)"
    assert run_in_env(env, "webapp").stdout.startswith("webapp v3 v2 v1 0.1.0")

    status = vk(capsys, "status", "--env", env, "--json").json
    assert status["current"] == 3
    assert [(g["number"], g["current"]) for g in status["generations"]] == [(2, False), (3, True), (4, False)]
    assert all(g["python"].startswith("3.") for g in status["generations"])

    assert vk(capsys, "rollback", "--env", env, "--to", "4").code == 0
    assert run_in_env(env, "webapp").stdout.startswith("webapp v4")
    missing = vk(capsys, "rollback", "--env", env, "--to", "1")
    assert missing.code == 2
    assert missing.error_line == f"error: {env}: generation 1 is not kept (kept: 2, 3, 4)"


def test_rollback_without_an_older_generation(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    result = vk(capsys, "rollback", "--env", env)
    assert result.code == 2
    assert result.error_line == f"error: {env}: no generation older than 1 is kept"


def test_a_deploy_after_rollback_is_judged_against_the_live_generation(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    _edit(project, "NEW")
    vk(capsys, "deploy", project, "--env", env)
    vk(capsys, "rollback", "--env", env)
    # The live generation (1) was not built from the edited tree: a deploy must build again.
    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert report["changed"] is True
    assert report["generation"] == 3
    assert report["rebuilt"] == []  # the edited webapp's wheel is still in the cache
    assert run_in_env(env, "webapp").stdout.startswith("webapp NEW")


def _plain_venv(env: Path) -> None:
    run([find_uv(), "venv", "--quiet", str(env)])
    run([find_uv(), "pip", "install", "--quiet", "--python", str(env / "bin" / "python"), "tinyutil==1.0.0"])


def test_a_plain_venv_is_adopted_and_can_be_rolled_back_to(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".venv"
    _plain_venv(env)
    before = snapshot(env)

    report = vk(capsys, "deploy", project, "--env", env, "--json").json

    assert report["adopted"] == 1
    assert report["generation"] == 2
    assert {"name": "tinyutil", "old": "1.0.0", "new": "1.1.0"} in report["packages"]["changed"]
    assert env.is_symlink()
    adopted_dir = tmp_path / ".venv.venvkeeper" / "generations" / "0001"
    assert snapshot(adopted_dir) == before
    assert run_in_env(env, "webapp").returncode == 0

    result = vk(capsys, "rollback", "--env", env)
    assert result.code == 0, result.err
    assert "the adopted environment is live again" in result.out
    assert not env.is_symlink()
    assert snapshot(env) == before

    # Deploying again adopts it again.
    assert vk(capsys, "deploy", project, "--env", env, "--json").json["adopted"] is not None


def test_in_place_converges_the_directory_itself(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "app" / ".venv"
    report = vk(capsys, "deploy", project, "--env", env, "--in-place", "--json").json
    assert report["changed"] is True
    assert report["in_place"] is True
    assert report["generation"] is None
    assert env.is_dir()
    assert not env.is_symlink()
    assert run_in_env(env, "webapp").returncode == 0

    assert "is unchanged" in vk(capsys, "deploy", project, "--env", env, "--in-place").out
    _edit(project, "NEW")
    report = vk(capsys, "deploy", project, "--env", env, "--in-place", "--json").json
    assert report["changed"] is True
    assert report["rebuilt"] == ["webapp"]
    assert run_in_env(env, "webapp").stdout.startswith("webapp NEW")
    assert (site_packages(env) / "core" / "__init__.py").is_file()
    assert generations(env) == []


def test_in_place_refuses_a_generation_symlink(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    result = vk(capsys, "deploy", project, "--env", env, "--in-place")
    assert result.code == 2
    assert "--in-place would change a kept generation" in result.error_line


_HOLDER = """
import sys, time
from pathlib import Path
from venvkeeper.core.locking import hold
with hold(Path(sys.argv[1]), wait=True, what="test"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_one_deploy_at_a_time(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    lock = tmp_path / ".venv.venvkeeper" / "deploy.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock), "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        busy = vk(capsys, "deploy", project, "--env", env, "--no-wait")
        assert busy.code == 3
        assert busy.error_line.startswith(
            f"error: environment {env} is busy: {lock} is held by pid {holder.pid}"
        )

        # Without --no-wait the deploy queues behind the holder, then finds nothing to do.
        started = time.monotonic()
        waited = vk(capsys, "deploy", project, "--env", env)
        assert waited.code == 0, waited.err
        assert "is unchanged" in waited.out
        assert time.monotonic() - started > 0.5
    finally:
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
