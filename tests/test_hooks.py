"""Post-deploy hooks: run only on change, with the new environment first on PATH; a failure rolls back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vk import commit_all, generations, leftovers, run_in_env, vk


def _with_hooks(project: Path, *commands: str, extra: str = "") -> None:
    pyproject = project / "pyproject.toml"
    listed = ", ".join(f"'{c}'" for c in commands)
    pyproject.write_text(
        pyproject.read_text() + f"\n[tool.venvkeeper.hooks]\npost-deploy = [{listed}]\n{extra}"
    )
    commit_all(project, "hooks")


def _edit_member(project: Path, marker: str) -> None:
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text().replace('print(f"webapp ', f'print(f"webapp {marker} ', 1))


@pytest.fixture
def hook_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "hook.log"
    monkeypatch.setenv("HOOK_LOG", str(log))
    return log


def test_hooks_run_in_order_with_the_new_env_first_on_path(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], hook_log: Path
) -> None:
    project = make_project("workspace")
    _with_hooks(
        project,
        'echo "first $VENVKEEPER_ENV $VENVKEEPER_GENERATION $(command -v webapp) $PWD" >> "$HOOK_LOG"',
        'webapp >> "$HOOK_LOG"',
    )
    env = tmp_path / ".venv"
    result = vk(capsys, "deploy", project, "--env", env, "--json")

    assert result.code == 0, result.err
    lines = hook_log.read_text().splitlines()
    assert lines[0] == f"first {env} 1 {env}/bin/webapp {project}"
    assert lines[1].startswith("webapp 0.1.0 (core 0.1.0")
    hooks = result.json["hooks"]
    assert [h["ok"] for h in hooks] == [True, True]
    assert hooks[1]["command"] == 'webapp >> "$HOOK_LOG"'

    # Nothing changed: no hook runs.
    logged = hook_log.read_text()
    assert "is unchanged" in vk(capsys, "deploy", project, "--env", env).out
    assert hook_log.read_text() == logged


def test_failing_hook_switches_back_and_shows_its_output(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], hook_log: Path
) -> None:
    project = make_project("workspace")
    _with_hooks(
        project, 'test ! -e "$HOOK_LOG.fail" || { echo "migration 0042 failed: table exists"; exit 3; }'
    )
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    Path(f"{hook_log}.fail").write_text("")
    _edit_member(project, "NEW")

    result = vk(capsys, "deploy", project, "--env", env)

    assert result.code == 4
    assert result.error_line.startswith("error: post-deploy hook `test ! -e")
    assert result.error_line.endswith("exited 3; switched back to generation 1")
    assert "  | migration 0042 failed: table exists" in result.err
    assert str(env.readlink()).endswith("generations/0001")
    assert run_in_env(env, "webapp").stdout.startswith("webapp 0.1.0")
    assert generations(env) == ["0001", "0001.json"]
    assert leftovers(env) == []


def test_failing_hook_with_no_rollback_keeps_the_new_generation(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], hook_log: Path
) -> None:
    project = make_project("workspace")
    _with_hooks(project, 'test ! -e "$HOOK_LOG.fail"')
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    Path(f"{hook_log}.fail").write_text("")
    _edit_member(project, "NEW")

    result = vk(capsys, "deploy", project, "--env", env, "--no-rollback", "--json")

    assert result.code == 4
    assert result.json["error"]["code"] == "hook"
    assert "generation 2 stays live" in result.json["error"]["message"]
    assert result.json["hooks"][0]["exit_code"] == 1
    assert run_in_env(env, "webapp").stdout.startswith("webapp NEW 0.1.0")


def test_failing_hook_on_the_first_deploy_leaves_nothing(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    _with_hooks(project, "exit 9")
    env = tmp_path / ".venv"
    result = vk(capsys, "deploy", project, "--env", env)
    assert result.code == 4
    assert result.error_line.endswith(f"exited 9; {env} removed again (nothing stood there before)")
    assert not env.exists()
    assert not env.is_symlink()
    assert generations(env) == []


def test_hook_timeout_counts_as_failure(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    _with_hooks(project, "sleep 30", extra="timeout = 0.5\n")
    env = tmp_path / ".venv"
    result = vk(capsys, "deploy", project, "--env", env)
    assert result.code == 4
    assert "timed out" in result.error_line
    assert "[venvkeeper: killed after" in result.err


def test_hook_directory_is_configurable(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], hook_log: Path
) -> None:
    project = make_project("workspace")
    _with_hooks(project, 'pwd >> "$HOOK_LOG"', extra='directory = "packages/webapp"\n')
    vk(capsys, "deploy", project, "--env", tmp_path / ".venv")
    assert hook_log.read_text().strip() == str(project / "packages" / "webapp")
