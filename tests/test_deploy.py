"""``venvkeeper deploy``: what a user sees on the happy paths."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from venvkeeper.gateways import uv as uvcmd
from venvkeeper.generations import engine
from vk import commit_all, generations, run_in_env, site_packages, snapshot, vk


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("workspace")


def test_first_deploy_installs_members_non_editable(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "srv" / ".venv"
    result = vk(capsys, "deploy", project, "--env", env, "--json")

    assert result.code == 0, result.err
    report = result.json
    assert report["changed"] is True
    assert report["generation"] == 1
    assert report["env"] == str(env)
    added = {p["name"]: p["new"] for p in report["added"]}
    assert added == {
        "core": "0.1.0",
        "webapp": "0.1.0",
        "tinyweb": "1.0.0",
        "tinyutil": "1.1.0",
        "tinydb": "1.2.0",
    }
    assert report["packages"]["added"] == report["added"]
    assert sorted(report["rebuilt"]) == ["core", "webapp"]
    assert env.is_symlink()
    assert str(env.readlink()) == ".venv.venvkeeper/generations/0001"

    # Non-editable: real files in site-packages, no .pth or direct_url pointing into the source.
    site = site_packages(env)
    assert (site / "core" / "__init__.py").is_file()
    assert (site / "webapp" / "__init__.py").is_file()
    for pth in site.glob("*.pth"):
        assert str(project) not in pth.read_text(), pth
    for direct_url in site.glob("*.dist-info/direct_url.json"):
        data = json.loads(direct_url.read_text())
        assert not data.get("dir_info", {}).get("editable"), direct_url
        assert str(project) not in data["url"], direct_url
    # The dev group is not installed by default.
    assert not list(site.glob("tinyextra*"))

    script = run_in_env(env, "webapp")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("webapp 0.1.0 (core 0.1.0, tinyweb 1.0.0, tinydb 1.2.0)")


def test_second_deploy_is_a_no_op_without_running_uv(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    before = snapshot(env.parent)

    def no_uv(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"uv ran on a no-op deploy: {args}")

    # Where the names are looked up when called: engine imported run_uv from uvcmd (patching
    # uvcmd.run_uv alone never applied), and uvcmd asks uv where its cache is through _uv_query.
    monkeypatch.setattr(engine, "run_uv", no_uv)
    monkeypatch.setattr(uvcmd, "run_uv", no_uv)
    monkeypatch.setattr(uvcmd, "_uv_query", no_uv)
    result = vk(capsys, "deploy", project, "--env", env)

    assert result.code == 0, result.err
    assert f"{env} is unchanged (generation 1)" in result.out
    assert generations(env) == ["0001", "0001.json"]
    after = snapshot(env.parent)
    assert {k: v for k, v in after.items() if "deploy.lock" not in k} == {
        k: v for k, v in before.items() if "deploy.lock" not in k
    }


def test_json_of_a_no_op(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert report["changed"] is False
    assert report["generation"] == 1
    assert report["added"] == report["removed"] == report["packages"]["changed"] == []
    assert report["duration_s"] >= 0


def test_edited_member_is_rebuilt_without_a_version_bump(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(
        init.read_text().replace('print(f"webapp {__version__}', 'print(f"webapp EDITED {__version__}')
    )
    # Not committed: the working tree's content of tracked files is what gets built.

    report = vk(capsys, "deploy", project, "--env", env, "--json").json

    assert report["changed"] is True
    assert report["generation"] == 2
    assert report["previous"] == 1
    assert report["rebuilt"] == ["webapp"]
    assert report["reused"] == ["core"]
    assert report["added"] == report["removed"] == report["packages"]["changed"] == []
    assert run_in_env(env, "webapp").stdout.startswith("webapp EDITED 0.1.0")


def test_untracked_and_ignored_files_do_not_count(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    (project / "packages" / "webapp" / "notes.txt").write_text("scratch")  # untracked
    (project / "packages" / "core" / "build").mkdir()  # ignored
    (project / "packages" / "core" / "build" / "junk.py").write_text("x = 1")

    assert "is unchanged" in vk(capsys, "deploy", project, "--env", env).out


def test_a_lock_change_outside_the_selected_groups_installs_nothing(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], publish: Callable[..., Path]
) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    publish("tinyextra", "1.1.0")
    from support.process import run
    from venvkeeper.gateways.uv import find_uv

    run([find_uv(), "lock", "--upgrade-package", "tinyextra"], cwd=project)
    assert 'version = "1.1.0"' in (project / "uv.lock").read_text()
    commit_all(project, "bump a dev tool")

    report = vk(capsys, "deploy", project, "--env", env, "--json").json

    assert report["changed"] is False
    assert "no install ran" in report["reason"]
    assert generations(env) == ["0001", "0001.json"]


def test_group_adds_packages_and_is_remembered(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    report = vk(capsys, "deploy", project, "--env", env, "--group", "dev", "--json").json
    assert report["changed"] is True
    assert report["added"] == [{"name": "tinyextra", "old": "", "new": "1.0.0"}]
    assert report["rebuilt"] == []  # members came from the wheel cache
    assert "is unchanged" in vk(capsys, "deploy", project, "--env", env, "--group", "dev").out
    # Dropping the group is a change too: the new generation no longer has it.
    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert report["removed"] == [{"name": "tinyextra", "old": "1.0.0", "new": ""}]


def test_defaults_come_from_tool_venvkeeper(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.venvkeeper]\ngroups = ["dev"]\nkeep = 1\n')
    commit_all(project)
    env = tmp_path / ".venv"
    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert {"name": "tinyextra", "old": "", "new": "1.0.0"} in report["added"]


def test_deploy_does_not_depend_on_the_working_directory(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A uv.toml above the caller's directory naming an index that does not exist: uv would walk up
    # to it from the cwd. venvkeeper runs uv elsewhere, so it must not matter.
    outer = tmp_path / "outer"
    (outer / "inner").mkdir(parents=True)
    (outer / "uv.toml").write_text('index-url = "http://127.0.0.1:9/simple"\nno-cache = true\n')
    monkeypatch.chdir(outer / "inner")
    env = tmp_path / ".venv"
    result = vk(capsys, "deploy", project, "--env", env)
    assert result.code == 0, result.err


def test_single_project_root_is_installed(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")
    env = tmp_path / ".venv"
    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    names = {p["name"] for p in report["added"]}
    assert "tinyutil" in names
    assert len(report["rebuilt"]) == 1
    assert report["rebuilt"][0] in names


def test_a_project_of_dependencies_only_deploys(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No member to build: found by the verify benchmark, where `uv pip install` was called with no wheels.
    project = make_project("depsonly")
    env = tmp_path / ".venv"
    result = vk(capsys, "deploy", project, "--env", env, "--json")
    assert result.code == 0, result.err
    assert {p["name"] for p in result.json["added"]} == {"tinyutil"}
    assert result.json["rebuilt"] == []
    assert (
        run_in_env(env, "python", "-c", "import tinyutil; print(tinyutil.__name__)").stdout.strip()
        == "tinyutil"
    )


def test_the_same_content_from_another_checkout_is_recorded_as_its_source(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing is built, but the record now names the checkout deployed from: ``update`` works on it."""
    first = make_project("updatable")
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", first, "--env", env).code == 0
    second = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(first), str(second)], check=True)

    refused = vk(capsys, "update", second, "--env", env, "--dry-run")
    assert refused.code == 2 and f"deployed from {first}, not from {second}" in refused.error_line

    again = vk(capsys, "deploy", second, "--env", env, "--json")
    assert again.code == 0 and again.json["changed"] is False
    assert again.json["reason"].endswith(f"; now recorded as deployed from {second} (was {first})")
    assert json.loads((tmp_path / ".venv.venvkeeper" / "generations" / "0001.json").read_text())[
        "project"
    ] == str(second)
    assert generations(env) == ["0001", "0001.json"]
    updated = vk(capsys, "update", second, "--env", env, "--dry-run", "--json")
    assert updated.code == 0, updated.out
    assert "is unchanged" in vk(capsys, "deploy", second, "--env", env).out
