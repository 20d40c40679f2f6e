"""The no-op fast path: answered from file metadata, and never when something changed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vk import generations, run_in_env, vk

FAST = "(file metadata unchanged)"
CAPABILITIES = {"deploy", "verify", "doctor", "update", "bundle"}


def _settle() -> None:
    # The stamp is not written while files are younger than the racy window (2 s), as git does.
    time.sleep(2.1)


@pytest.fixture
def stamped(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path]:
    project = make_project("workspace")
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    _settle()
    slow = vk(capsys, "deploy", project, "--env", env)
    assert "is unchanged" in slow.out
    assert FAST not in slow.out
    assert (tmp_path / ".venv.venvkeeper" / "noop-stamp.json").is_file()
    return project, env


def test_unchanged_is_answered_from_metadata(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    fast = vk(capsys, "deploy", project, "--env", env)
    assert fast.code == 0
    assert fast.out.startswith(
        f"{env} is unchanged (generation 1): nothing changed since the live environment"
    )
    assert FAST in fast.out


def test_the_fast_paths_load_only_their_own_command(stamped: tuple[Path, Path], tmp_path: Path) -> None:
    """A no-op deploy, verify and doctor (timed) load neither click, cryptography nor another command."""
    project, env = stamped
    own = {"deploy": set(), "verify": {"verify"}, "doctor": {"doctor"}}
    args = {
        "deploy": ["deploy", str(project), "--env", str(env)],
        "verify": ["verify", "--env", str(env)],
        "doctor": ["doctor", "--env", str(env)],
    }
    program = (
        "import sys\n"
        "from venvkeeper.cli.main import main\n"
        "code = main(sys.argv[2:])\n"
        "with open(sys.argv[1], 'w') as fh:\n"
        "    fh.write(' '.join(sys.modules))\n"
        "raise SystemExit(code)\n"
    )
    for command, argv in args.items():
        modules = tmp_path / f"{command}.modules"
        proc = subprocess.run(
            [sys.executable, "-c", program, str(modules), *argv], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        if command == "deploy":
            assert FAST in proc.stdout
        loaded = modules.read_text().split()
        capabilities = {m.split(".")[1] for m in loaded if m.startswith("venvkeeper.")} & CAPABILITIES
        assert sorted(capabilities - own[command]) == [], command
        heavy = [m for m in ("click", "cryptography", "packaging", "dataclasses") if m in loaded]
        assert heavy == [], command


def test_fast_json_has_the_same_shape(stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    project, env = stamped
    fast = vk(capsys, "deploy", project, "--env", env, "--json").json
    os.unlink(env.parent / ".venv.venvkeeper" / "noop-stamp.json")
    slow = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert FAST in fast["reason"]
    assert FAST not in slow["reason"]
    assert fast.keys() == slow.keys()
    for key in ("changed", "generation", "env", "added", "removed", "packages"):
        assert fast[key] == slow[key], key


def test_a_same_size_edit_with_the_old_mtime_is_still_seen(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    before = init.stat()
    text = init.read_text()
    edited = text.replace('print(f"webapp ', 'print(f"WEBAPP ', 1)
    assert len(edited) == len(text)
    init.write_text(edited)
    os.utime(init, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves

    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert report["changed"] is True
    assert report["rebuilt"] == ["webapp"]
    assert run_in_env(env, "webapp").stdout.startswith("WEBAPP 0.1.0")


def test_other_options_are_not_answered_by_the_stamp(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    report = vk(capsys, "deploy", project, "--env", env, "--group", "dev", "--json").json
    assert report["changed"] is True
    assert report["added"] == [{"name": "tinyextra", "old": "", "new": "1.0.0"}]


def test_rollback_invalidates_the_stamp(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + "\n# v2\n")
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    _settle()
    assert "is unchanged" in vk(capsys, "deploy", project, "--env", env).out  # stamps generation 2
    assert vk(capsys, "rollback", "--env", env).code == 0
    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert report["changed"] is True  # generation 1 is live, and was not built from this tree
    assert report["generation"] == 3
    assert generations(env)[-2:] == ["0003", "0003.json"]


def test_no_stamp_outside_git(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace", git=False)
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    _settle()
    assert "is unchanged" in vk(capsys, "deploy", project, "--env", env).out
    assert not (tmp_path / ".venv.venvkeeper" / "noop-stamp.json").exists()
