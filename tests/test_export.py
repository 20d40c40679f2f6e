"""``venvkeeper export``: the lock's runtime set for a container build, as PEP 751 or hashed
requirements, with nothing written into the project."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from support.process import run
from vk import vk


def _git_status(project: Path) -> str:
    return run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project).stdout


def test_pylock_holds_the_runtime_set_only(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    out = tmp_path / "pylock.toml"

    result = vk(capsys, "export", project, "--format", "pylock", "-o", out, "--json")

    assert result.code == 0, result.err
    assert result.json["output"] == str(out)
    lock = Pylock.from_dict(tomllib.loads(out.read_text()))
    names = sorted(p.name for p in lock.packages)
    # core and webapp are members (built in a later layer); tinyextra is in the dev group only.
    assert names == ["tinydb", "tinyutil", "tinyweb"]
    assert all(p.wheels and p.wheels[0].hashes["sha256"] for p in lock.packages)
    assert _git_status(project) == ""


def test_requirements_are_hashed_and_groups_are_asked_for(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")

    plain = vk(capsys, "export", project, "--format", "requirements")
    with_dev = vk(capsys, "export", project, "--format", "requirements", "--group", "dev")

    assert plain.code == with_dev.code == 0
    assert "tinyutil==" in plain.out
    assert "--hash=sha256:" in plain.out
    assert "tinyextra" not in plain.out
    assert "tinyextra==" in with_dev.out
    assert "-e " not in plain.out
    assert "packages/" not in plain.out


def test_a_stale_lock_or_unknown_group_is_one_error_line(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    unknown = vk(capsys, "export", project, "--format", "pylock", "--group", "staging")
    assert unknown.code == 2
    assert "unknown dependency group 'staging'" in unknown.error_line

    pyproject = project / "packages" / "webapp" / "pyproject.toml"
    edited = pyproject.read_text().replace("dependencies = [", 'dependencies = ["tinyextra", ', 1)
    pyproject.write_text(edited)
    stale = vk(capsys, "export", project, "--format", "pylock")
    assert stale.code == 2
    assert "uv.lock: out of date" in stale.error_line


def test_uv_exports_names_for_the_format_and_the_output_file(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command line moves between `uv export` and `venvkeeper export` as it is."""
    project = make_project("workspace")
    for ours, uvs in (("pylock", "pylock.toml"), ("requirements", "requirements.txt")):
        mine, theirs = tmp_path / f"ours-{ours}", tmp_path / f"uv-{ours}"
        assert vk(capsys, "export", project, "--format", ours, "-o", mine).code == 0
        assert vk(capsys, "export", project, "--format", uvs, "--output-file", theirs).code == 0
        assert theirs.read_bytes() == mine.read_bytes() != b""
