"""``--no-hooks`` (issue 15): a deploy or install that changes the environment runs no post-deploy hook
(a container layer must not run the production migration), says so, and otherwise does what it always does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vk import commit_all, generations, run_in_env, vk, vk_click

SKIPPED = "post-deploy hooks skipped (--no-hooks)"


def _with_marker_hook(project: Path, marker: Path) -> None:
    """A hook that leaves ``marker`` (one line per run): what a migration would be."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + f"\n[tool.venvkeeper.hooks]\npost-deploy = ['echo ran >> {marker}']\n"
    )
    commit_all(project, "a hook")


def _edit_member(project: Path, marker: str) -> None:
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text().replace('print(f"webapp ', f'print(f"webapp {marker} ', 1))
    commit_all(project, f"edit {marker}")


@pytest.mark.parametrize("parser", ["fast", "click"])
def test_deploy_with_no_hooks_switches_but_runs_no_hook(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], parser: str
) -> None:
    project = make_project("workspace")
    marker = tmp_path / "migrated"
    _with_marker_hook(project, marker)
    env = tmp_path / ".venv"
    run = vk if parser == "fast" else vk_click

    skipped = run(capsys, "deploy", project, "--env", env, "--no-hooks", "--json")

    assert skipped.code == 0, skipped.err
    assert (skipped.json["changed"], skipped.json["generation"], skipped.json["hooks"]) == (True, 1, [])
    assert skipped.json["reason"] == f"new generation built; {SKIPPED}"
    assert not marker.exists()
    assert run_in_env(env, "webapp").stdout.startswith("webapp 0.1.0")

    # Unchanged with --no-hooks is the no-op it is without it.
    assert "is unchanged (generation 1)" in run(capsys, "deploy", project, "--env", env, "--no-hooks").out

    _edit_member(project, "TEXT")
    text = run(capsys, "deploy", project, "--env", env, "--no-hooks")
    assert text.code == 0, text.err
    assert "-> generation 2 (was 1)" in text.out
    assert f"  {SKIPPED}\n" in text.out
    assert not marker.exists()

    # Without it, the next change runs the hook as always.
    _edit_member(project, "NEW")
    ran = run(capsys, "deploy", project, "--env", env, "--json")
    assert ran.code == 0, ran.err
    assert [h["command"] for h in ran.json["hooks"]] == [f"echo ran >> {marker}"]
    assert SKIPPED not in ran.json["reason"]
    assert marker.read_text() == "ran\n"
    assert generations(env)[-2:] == ["0003", "0003.json"]


def test_deploy_in_place_with_no_hooks_runs_no_hook(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    marker = tmp_path / "migrated"
    _with_marker_hook(project, marker)
    env = tmp_path / "layer" / "venv"

    skipped = vk(capsys, "deploy", project, "--env", env, "--in-place", "--no-hooks", "--json")

    assert skipped.code == 0, skipped.err
    assert (skipped.json["changed"], skipped.json["in_place"], skipped.json["hooks"]) == (True, True, [])
    assert skipped.json["reason"] == f"converged in place; {SKIPPED}"
    assert not marker.exists()
    assert run_in_env(env, "webapp").stdout.startswith("webapp 0.1.0")

    _edit_member(project, "NEW")
    ran = vk(capsys, "deploy", project, "--env", env, "--in-place", "--json")
    assert ran.code == 0, ran.err
    assert len(ran.json["hooks"]) == 1
    assert marker.read_text() == "ran\n"


def test_install_with_hooks_dir_and_no_hooks_runs_no_hook(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")
    marker = tmp_path / "migrated"
    _with_marker_hook(project, marker)
    bundle = tmp_path / "app.tar.gz"
    assert vk(capsys, "pack", project, "-o", bundle).code == 0
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    env = tmp_path / "srv" / ".venv"

    skipped = vk(capsys, "install", bundle, "--env", env, "--hooks-dir", checkout, "--no-hooks", "--json")

    assert skipped.code == 0, skipped.err
    assert (skipped.json["changed"], skipped.json["generation"], skipped.json["hooks"]) == (True, 1, [])
    assert skipped.json["reason"] == f"installed app.tar.gz; {SKIPPED}"
    assert not marker.exists()
    assert run_in_env(env, "single").stdout.strip() == "single 0.1.0 (tinyutil 1.1.0)"

    # The same bundle into another environment, without --no-hooks: the hook runs.
    text = vk(capsys, "install", bundle, "--env", tmp_path / "other" / ".venv", "--hooks-dir", checkout)
    assert text.code == 0, text.err
    assert f"hook ok: echo ran >> {marker}" in text.out
    assert SKIPPED not in text.out
    assert marker.read_text() == "ran\n"
