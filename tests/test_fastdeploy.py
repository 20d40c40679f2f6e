"""A deploy without click (cli/fastdeploy.py): the same request and report as click's ``deploy``
command, and click's own answer to anything it does not parse exactly."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vk import vk, vk_click

PROGRAM = (
    "import sys\n"
    "from venvkeeper.cli.main import main\n"
    "code = main(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as fh:\n"
    "    fh.write(' '.join(sys.modules))\n"
    "raise SystemExit(code)\n"
)


def _comparable(report: dict[str, object], env: Path) -> dict[str, object]:
    # Each deploy has its own --env; the times and the record of uv's cache are the run's own.
    dropped = {"duration_s", "uv_cache"}
    return {
        k: (str(v).replace(str(env), "$E") if k == "env" else v)
        for k, v in report.items()
        if k not in dropped
    }


def test_a_deploy_without_click_reports_what_clicks_deploy_reports(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    fast_env, click_env = tmp_path / "fast" / ".venv", tmp_path / "click" / ".venv"
    options = ["--group", "dev", "--keep", "2", "--no-rollback", "--json"]

    fast = vk(capsys, "deploy", project, "--env", fast_env, *options)
    slow = vk_click(capsys, "deploy", project, "--env", click_env, *options)

    assert fast.code == slow.code == 0, fast.out + slow.out
    assert list(fast.json) == list(slow.json)
    assert _comparable(fast.json, fast_env) == _comparable(slow.json, click_env)
    assert fast.json["changed"] is True
    assert {"name": "tinyextra", "old": "", "new": "1.0.0"} in fast.json["added"]


def test_a_full_deploy_loads_no_click(make_project: Callable[..., Path], tmp_path: Path) -> None:
    project = make_project("workspace")
    modules = tmp_path / "modules"
    argv = ["deploy", str(project), "--env", str(tmp_path / ".venv"), "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(modules), *argv], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"changed": true' in proc.stdout
    assert "click" not in modules.read_text().split()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--keep", "-1"], "Invalid value for '--keep'"),
        (["--keep", "many"], "Invalid value for '--keep'"),
        (["--bogus"], "No such option '--bogus'"),
        (["--python"], "Option '--python' requires an argument"),
    ],
)
def test_what_the_small_parser_does_not_take_click_answers(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    words: str,
) -> None:
    project = make_project("workspace")
    result = vk(capsys, "deploy", project, "--env", tmp_path / ".venv", *extra)
    assert result.code == 2
    assert words in result.err
    assert not (tmp_path / ".venv.venvkeeper").exists()


def test_a_project_that_is_a_file_is_refused_by_click(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    regular = tmp_path / "pyproject.toml"
    regular.write_text("[project]\n")
    result = vk(capsys, "deploy", regular, "--env", tmp_path / ".venv")
    assert result.code == 2
    assert "is a file" in result.err
    assert not (tmp_path / ".venv.venvkeeper").exists()
