"""``--project DIR`` wherever a command takes the project directory (issue 15): deploy, update, pack
and export take it as PROJECT_DIR or as --project (verify's name for it); both at once is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vk import vk, vk_click


@pytest.mark.parametrize("parser", ["fast", "click"])
def test_deploy_takes_project(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], parser: str
) -> None:
    project = make_project("workspace")
    env = tmp_path / ".venv"
    run = vk if parser == "fast" else vk_click

    first = run(capsys, "deploy", "--project", project, "--env", env, "--json")

    assert first.code == 0, first.err
    assert (first.json["changed"], first.json["generation"]) == (True, 1)
    # The same request either way: the positional form finds it unchanged, and so does --project.
    assert "is unchanged (generation 1)" in vk(capsys, "deploy", project, "--env", env).out
    assert "is unchanged (generation 1)" in run(capsys, "deploy", "--env", env, f"--project={project}").out


def test_export_takes_project(make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project("workspace")

    positional = vk(capsys, "export", project, "--format", "requirements")
    option = vk(capsys, "export", "--project", project, "--format", "requirements")

    assert positional.code == option.code == 0, positional.err + option.err
    assert "tinyutil==" in option.out
    assert option.out == positional.out


def test_pack_takes_project(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")

    positional = vk(capsys, "pack", project, "-o", tmp_path / "a.tar.gz", "--json")
    option = vk(capsys, "pack", "--project", project, "-o", tmp_path / "b.tar.gz", "--json")

    assert positional.code == option.code == 0, positional.err + option.err
    assert option.json["sha256"] == positional.json["sha256"]


def test_update_takes_project(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0

    positional = vk(capsys, "update", project, "--env", env, "--dry-run", "--json")
    option = vk(capsys, "update", "--project", project, "--env", env, "--dry-run", "--json")

    assert positional.code == option.code, positional.out + option.out
    assert option.json["outcome"] == positional.json["outcome"]
    assert option.json.get("project") == positional.json.get("project")


@pytest.mark.parametrize(
    "command",
    [
        ["deploy", "--env", "ENV"],
        ["deploy", "--env", "ENV", "--json"],
        ["update", "--env", "ENV", "--dry-run"],
        ["pack", "-o", "OUT"],
        ["export", "--format", "requirements"],
    ],
    ids=" ".join,
)
def test_project_given_twice_is_one_error_line(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    project = make_project("single")
    other = tmp_path / "other"
    other.mkdir()
    env, out = tmp_path / ".venv", tmp_path / "app.tar.gz"
    args = [str(env) if a == "ENV" else str(out) if a == "OUT" else a for a in command]

    result = vk(capsys, args[0], project, *args[1:], "--project", other)

    assert result.code == 2, result.out + result.err
    message = f"the project directory is given twice: PROJECT_DIR {project} and --project {other}"
    if "--json" in args:
        assert result.json["error"]["message"] == message
    else:
        assert result.error_line == f"error: {message}"
    assert not env.exists() and not out.exists()
