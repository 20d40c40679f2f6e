"""Robustness of deploy and the command line: --env inside the source is refused, a failed first
deploy leaves nothing behind, and a reader that closes stdout early does not change the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.index import LocalIndex
from vk import Outcome, commit_all, run_in_env, snapshot, vk

FAST = "(file metadata unchanged)"


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("workspace")


# -- --env inside the project --------------------------------------------------------------------


def _assert_refused_inside(result: Outcome, project: Path) -> None:
    assert result.code == 2, result.out + result.err
    line = result.error_line
    assert "is inside the project" in line and str(project) in line
    assert "never writes into the source tree" in line
    assert f"hint: choose an --env outside {project}" in result.err


@pytest.mark.parametrize("where", ["child", "root", "dotdot", "symlink", "nested"])
def test_env_inside_the_project_is_refused_and_nothing_is_written(
    where: str, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "link").symlink_to(project)
    (tmp_path / "elsewhere").mkdir()
    env = {
        "child": project / ".venv",
        "root": project,
        "dotdot": tmp_path / "elsewhere" / ".." / project.name / ".venv",
        "symlink": tmp_path / "link" / ".venv",
        "nested": project / "deploy" / "here" / ".venv",
    }[where]
    before = snapshot(project)
    beside = sorted(os.listdir(tmp_path))

    result = vk(capsys, "deploy", project, "--env", env)

    _assert_refused_inside(result, project)
    assert snapshot(project) == before
    assert sorted(os.listdir(tmp_path)) == beside


def test_env_inside_the_project_is_refused_in_json_with_its_code(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = vk(capsys, "deploy", project, "--env", project / ".venv", "--json")
    assert result.code == 2
    assert result.json["error"]["code"] == "env-path"
    assert "inside the project" in result.json["error"]["message"]


def test_update_refuses_an_env_inside_the_project(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(project)
    result = vk(capsys, "update", project, "--env", project / ".venv", "--dry-run")
    _assert_refused_inside(result, project)
    assert snapshot(project) == before


def test_an_env_beside_the_project_with_a_similar_name_is_fine(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``/srv/app-env`` is not inside ``/srv/app``: the check is by path component, not by prefix."""
    env = tmp_path / f"{project.name}-env" / ".venv"
    result = vk(capsys, "deploy", project, "--env", env)
    assert result.code == 0, result.err
    assert run_in_env(env, "webapp").returncode == 0


# -- a failed first deploy -----------------------------------------------------------------------


def _break_core(project: Path) -> None:
    setup = project / "packages" / "core" / "setup.py"
    setup.write_text("raise SystemExit('core cannot be built today')\n")
    commit_all(project)


def test_a_failed_first_deploy_leaves_nothing_behind(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "made" / "by" / "deploy" / ".venv"
    _break_core(project)

    failed = vk(capsys, "deploy", project, "--env", env)

    assert failed.code == 1, failed.out + failed.err
    assert failed.error_line == "error: member core (packages/core/) failed to build"
    # The parents deploy created are gone again; tmp_path is as it was.
    assert not (tmp_path / "made").exists()

    (project / "packages" / "core" / "setup.py").unlink()
    commit_all(project)
    works = vk(capsys, "deploy", project, "--env", env, "--json")
    assert works.code == 0, works.out + works.err
    assert works.json["generation"] == 1
    assert run_in_env(env, "webapp").returncode == 0


def test_a_first_deploy_missing_a_package_leaves_an_existing_parent_alone(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    index: LocalIndex,
    fresh_uv_cache: Path,
) -> None:
    parent = tmp_path / "srv"
    parent.mkdir()
    (parent / "other-file").write_text("not venvkeeper's\n")
    index.unpublish("tinydb", "1.2.0")

    failed = vk(capsys, "deploy", project, "--env", parent / ".venv")

    assert failed.code == 1, failed.out + failed.err
    assert failed.error_line.startswith("error: cannot install tinydb")
    assert sorted(os.listdir(parent)) == ["other-file"]


def test_a_failed_first_in_place_deploy_removes_the_environment_it_started(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = tmp_path / "srv"
    parent.mkdir()
    _break_core(project)
    failed = vk(capsys, "deploy", project, "--env", parent / ".venv", "--in-place")
    assert failed.code == 1, failed.out + failed.err
    assert os.listdir(parent) == []


def test_a_failed_deploy_after_a_good_one_keeps_the_live_generation(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    _break_core(project)
    assert vk(capsys, "deploy", project, "--env", env).code == 1
    assert str(env.readlink()) == ".venv.venvkeeper/generations/0001"
    assert run_in_env(env, "webapp").returncode == 0


# -- a reader that goes away ---------------------------------------------------------------------


def _closed_stdout(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """venvkeeper with stdout a pipe whose reader has already closed it (``| head -1`` that is done)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "venvkeeper", *map(str, args)],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            check=False,
            timeout=300,
        )
    finally:
        os.close(write)


def _assert_quiet(ran: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in ran.stderr and "BrokenPipeError" not in ran.stderr, ran.stderr
    assert "Exception ignored" not in ran.stderr, ran.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_a_closed_stdout_does_not_change_the_exit_code_of_a_switch(
    as_json: bool, project: Path, tmp_path: Path
) -> None:
    env = tmp_path / "srv" / ".venv"
    ran = _closed_stdout("deploy", project, "--env", env, *(["--json"] if as_json else []))

    assert ran.returncode == 0, ran.stderr
    _assert_quiet(ran)
    assert str(env.readlink()) == ".venv.venvkeeper/generations/0001"
    assert run_in_env(env, "webapp").returncode == 0
    # A failure keeps its own code: the pipe changes nothing either way.
    bad = _closed_stdout("deploy", project, "--env", project / ".venv", *(["--json"] if as_json else []))
    assert bad.returncode == 2, bad.stderr
    _assert_quiet(bad)


@pytest.mark.parametrize("as_json", [False, True])
def test_a_closed_stdout_does_not_change_the_exit_code_of_the_fast_no_op(
    as_json: bool, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    time.sleep(2.1)  # no stamp while the files are younger than the racy window
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    flags = ["--json"] if as_json else []
    fast = vk(capsys, "deploy", project, "--env", env, *flags)
    assert FAST in (json.loads(fast.out)["reason"] if as_json else fast.out)

    ran = _closed_stdout("deploy", project, "--env", env, *flags)

    assert ran.returncode == 0, ran.stderr
    _assert_quiet(ran)


def test_head_in_a_pipeline_sees_the_switch_succeed(project: Path, tmp_path: Path) -> None:
    """The shell's view, with pipefail: ``venvkeeper deploy … | head -c 1`` exits 0."""
    env = tmp_path / "srv" / ".venv"
    command = (
        'set -o pipefail 2>/dev/null || exit 99; "$0" -m venvkeeper deploy "$1" --env "$2" --json | '
        '(exec 0<&-; exit 0); echo "rc=$?"'
    )
    shell = "/bin/bash" if Path("/bin/bash").exists() else None
    if shell is None:
        pytest.skip("bash not found (pipefail is needed to see the writer's exit code)")
    ran = subprocess.run(
        [shell, "-c", command, sys.executable, str(project), str(env)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert ran.stdout.strip() == "rc=0", ran.stdout + ran.stderr
    _assert_quiet(ran)
    assert run_in_env(env, "webapp").returncode == 0


def test_install_refuses_an_env_inside_the_hooks_checkout(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = make_project("single")
    bundle = tmp_path / "app.tar.gz"
    assert vk(capsys, "pack", single, "-o", bundle).code == 0
    checkout = tmp_path / "checkout"
    checkout.mkdir()

    result = vk(capsys, "install", bundle, "--env", checkout / ".venv", "--hooks-dir", checkout)

    assert result.code == 2, result.out + result.err
    assert f"is inside the --hooks-dir checkout {checkout}" in result.error_line
    assert os.listdir(checkout) == []


def test_a_deploy_started_with_stdout_closed_still_switches_and_exits_0(
    project: Path, tmp_path: Path
) -> None:
    """``venvkeeper deploy … >&-`` (fd 1 closed at start: Python's sys.stdout is None)."""
    env = tmp_path / "srv" / ".venv"
    ran = subprocess.run(
        [
            "sh",
            "-c",
            '"$0" -m venvkeeper deploy "$1" --env "$2" >&-; echo "rc=$?"',
            sys.executable,
            project,
            env,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert ran.stdout.strip() == "rc=0", ran.stdout + ran.stderr
    _assert_quiet(ran)
    assert run_in_env(env, "webapp").returncode == 0


# -- console scripts behind uv's /bin/sh trampoline ----------------------------------------------


def test_a_spaced_env_path_passes_the_smoke_check(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A space (or a path longer than a #! line allows) makes uv write its /bin/sh trampoline, which
    # quotes the interpreter with single quotes; the smoke check and doctor must read it.
    env = tmp_path / "a dir" / ".venv"

    result = vk(capsys, "deploy", project, "--env", env)

    assert result.code == 0, result.out + result.err
    script = (env / "bin" / "webapp").read_text().splitlines()
    assert script[0] == "#!/bin/sh" and script[1].startswith("'''exec' '/")
    ran = run_in_env(env, "webapp")
    assert ran.returncode == 0, ran.stderr
    # doctor reads the same trampoline: the scripts name this environment, nothing is stale.
    assert vk(capsys, "doctor", "--env", env).code == 0
