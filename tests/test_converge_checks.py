"""The checks uv makes beside a deploy's own work (deploy/converge.py): a ``--python`` path is checked
by uv while the export runs, and still refused before anything is built or installed; a failed check
explains what failed after it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.pythons import real_python
from venvkeeper.generations import engine
from vk import generations, leftovers, vk


@pytest.fixture
def slow_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the slow steps (uv's sync, a member's build, the members' install) that started."""
    started: list[str] = []
    for name in ("sync_dependencies", "build_wheel", "install_wheels"):
        original = getattr(engine, name)

        def record(
            *args: object, _name: str = name, _original: Callable[..., object] = original, **kw: object
        ) -> object:
            started.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(engine, name, record)
    yield started


def test_a_python_path_outside_requires_python_is_refused_before_any_slow_work(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    slow_work: list[str],
) -> None:
    python = real_python("3.10") or pytest.skip("CPython 3.10 not found under pyenv or PATH")
    project = make_project("single")  # requires-python = ">=3.11"
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", python, "--json")

    assert result.code == 2, result.out
    assert result.json["error"]["cause"] == "interpreter-unsupported"
    assert slow_work == []
    assert generations(env) == []
    assert leftovers(env) == []


def test_a_python_path_that_is_no_interpreter_is_named(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    slow_work: list[str],
) -> None:
    project = make_project("single")
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", fake)

    assert result.code == 2, result.out + result.err
    assert result.error_line.startswith(f"error: no usable Python interpreter for '{fake}'")
    assert slow_work == []
    assert generations(env) == []


def test_a_python_path_checked_beside_the_export_deploys(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = real_python("3.12") or pytest.skip("CPython 3.12 not found under pyenv or PATH")
    project = make_project("single")
    env = tmp_path / ".venv"

    report = vk(capsys, "deploy", project, "--env", env, "--python", python, "--json")

    assert report.code == 0, report.out
    version = subprocess.run(
        [env / "bin" / "python", "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == "(3, 12)"
