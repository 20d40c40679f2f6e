"""Bad input: one clear error line naming the file or package and the fix; the live env untouched."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.index import LocalIndex
from venvkeeper.core.errors import LockError
from vk import Outcome, commit_all, leftovers, run_in_env, snapshot, vk, vk_process


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("workspace")


@pytest.fixture
def live(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    """A deployed environment; after the test it must be exactly as before and still work."""
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    before = snapshot(env.parent)
    yield env
    after = snapshot(env.parent)
    # The wheel cache may keep a member that built fine before a later step failed: it is keyed by
    # content, so the retry reuses it. ctimes/ records the ctimes venvkeeper's own links and unlinks
    # moved in the live generation (generations/identity.py): bookkeeping, not the environment.
    # Everything else must be exactly as it was.
    changed = {
        k
        for k in before.keys() | after.keys()
        if before.get(k) != after.get(k)
        and "deploy.lock" not in k
        and "/wheels/" not in k
        and not k.startswith(".venv.venvkeeper/ctimes")
    }
    assert not changed, f"the live environment's directory changed: {sorted(changed)[:10]}"
    assert run_in_env(env, "webapp").returncode == 0
    assert leftovers(env) == []


def _edit_member(project: Path) -> None:
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + "\n# edited\n")


def test_missing_lock(project: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "uv.lock").unlink()
    result = vk(capsys, "deploy", project, "--env", live)
    assert result.code == 2
    assert (
        result.error_line == f"error: {project / 'uv.lock'}: missing; venvkeeper deploys only locked projects"
    )
    assert f"run `uv lock` in {project}" in result.err


def test_corrupt_lock(project: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = project / "uv.lock"
    lock.write_text(lock.read_text()[:200] + "\n[[package\nname = ")
    result = vk(capsys, "deploy", project, "--env", live)
    assert result.code == 2
    assert result.error_line.startswith(f"error: {lock}: corrupt")
    assert "git checkout -- uv.lock" in result.err


def test_corrupt_pyproject(project: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.venvkeeper\n")
    result = vk(capsys, "deploy", project, "--env", live)
    assert result.code == 2
    assert result.error_line.startswith(f"error: {pyproject}: not valid TOML")


def test_missing_pyproject(tmp_path: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "not-a-project"
    empty.mkdir()
    result = vk(capsys, "deploy", empty, "--env", live)
    assert result.code == 2
    assert result.error_line == f"error: {empty / 'pyproject.toml'}: not found"


def test_unknown_config_key(project: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.venvkeeper]\nkeeep = 2\n")
    result = vk(capsys, "deploy", project, "--env", live)
    assert result.code == 2
    assert result.error_line == f"error: {pyproject}: unknown key [tool.venvkeeper] keeep"


def test_lock_out_of_date_names_the_member(
    project: Path, live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    member = project / "packages" / "webapp" / "pyproject.toml"
    member.write_text(member.read_text().replace('"tinydb"]', '"tinydb", "tinyextra"]'))
    commit_all(project)
    result = vk(capsys, "deploy", project, "--env", live)
    assert result.code == 2
    assert result.error_line == f"error: {project / 'uv.lock'}: out of date with {member}"
    assert "hint: run `uv lock`" in result.err


def test_a_stale_lock_is_named_even_when_the_next_uv_step_fails_first(
    project: Path, live: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """uv's lock check runs beside the export: when the export fails (a symptom of the stale lock,
    here forced), the check's verdict is still awaited and is what the operator reads."""
    member = project / "packages" / "webapp" / "pyproject.toml"
    member.write_text(member.read_text().replace('"tinydb"]', '"tinydb", "tinyextra"]'))
    commit_all(project)

    def export_fails(*args: object, **kwargs: object) -> str:
        raise LockError("uv.lock: cannot be read for export", hint="run `uv lock`")

    monkeypatch.setattr("venvkeeper.generations.engine.export_text", export_fails)
    result = vk(capsys, "deploy", project, "--env", live)
    assert result.code == 2
    assert result.error_line == f"error: {project / 'uv.lock'}: out of date with {member}"


def test_unknown_group(project: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = vk(capsys, "deploy", project, "--env", live, "--group", "docs")
    assert result.code == 2
    assert result.error_line.startswith("error: unknown dependency group 'docs':")
    assert "define dev" in result.error_line


def test_member_that_fails_to_build(project: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup = project / "packages" / "core" / "setup.py"
    setup.write_text("raise SystemExit('core cannot be built today')\n")
    commit_all(project)
    result = vk(capsys, "deploy", project, "--env", live)
    assert result.code == 1
    assert result.error_line == "error: member core (packages/core/) failed to build"
    assert "core cannot be built today" in result.err  # the build log's tail
    # The staging copy took the build's litter; the source has none.
    assert not list((project / "packages" / "core").rglob("*.egg-info"))


def test_member_that_does_not_import_is_never_switched_to(
    project: Path, live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The smoke check: the new generation is built, but a member's module fails on import, so --env
    stays on the live one (the fixture checks it is byte-identical and still runs) and the new one is
    removed."""
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + "\nraise RuntimeError('webapp cannot start today')\n")
    commit_all(project)
    result = vk(capsys, "deploy", project, "--env", live, "--json")
    assert result.code == 1
    error = result.json["error"]
    assert error["code"] == "smoke-check"
    assert error["message"].startswith("smoke check failed: "), error
    assert "webapp" in error["message"]
    assert "webapp cannot start today" in error["detail"]


def test_package_missing_from_the_index(
    project: Path, live: Path, capsys: pytest.CaptureFixture[str], index: LocalIndex, fresh_uv_cache: Path
) -> None:
    """A member edit deploys as a clone of the live generation and needs nothing from the index; a
    new environment needs every package, and one the index no longer has is named."""
    index.unpublish("tinydb", "1.2.0")
    _edit_member(project)
    elsewhere = live.parent.parent / "elsewhere" / ".venv"
    result = vk(capsys, "deploy", project, "--env", elsewhere)
    assert result.code == 1
    assert result.error_line.startswith("error: cannot install tinydb")
    assert "index named in uv.lock is reachable" in result.err
    assert not elsewhere.exists()


def test_index_unreachable(
    project: Path, live: Path, capsys: pytest.CaptureFixture[str], index: LocalIndex, fresh_uv_cache: Path
) -> None:
    index.stop()
    _edit_member(project)
    result = vk(capsys, "deploy", project, "--env", live)
    assert result.code == 1
    assert result.error_line.startswith("error: ")
    assert "live environment was not touched" in result.err


def test_interpreter_not_found(project: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = vk(capsys, "deploy", project, "--env", live, "--python", "3.99")
    assert result.code == 2
    assert result.error_line.startswith("error: no usable Python interpreter for '3.99'")
    assert "--python /path/to/python" in result.err


def test_env_that_is_not_a_venv(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / "data"
    env.mkdir()
    (env / "precious.txt").write_text("keep me")
    result = vk(capsys, "deploy", project, "--env", env)
    assert result.code == 2
    assert result.error_line == f"error: {env} exists and is not a virtual environment venvkeeper can adopt"
    assert (env / "precious.txt").read_text() == "keep me"


def test_env_parent_is_a_file(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = vk(capsys, "deploy", project, "--env", blocker / ".venv")
    assert result.code == 2
    assert result.error_line.startswith(f"error: cannot create {blocker}")


def _unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _unshare_works(),
    reason="needs `unshare --mount` (root or user namespaces) for a read-only bind mount",
)
def test_env_parent_not_writable(project: Path, tmp_path: Path) -> None:
    parent = tmp_path / "readonly"
    parent.mkdir()
    env = parent / ".venv"
    script = f'mount --bind -o ro {parent} {parent} && exec "$0" -m venvkeeper deploy {project} --env {env}'
    import sys

    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, sys.executable],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    result = Outcome(proc.returncode, proc.stdout, proc.stderr)
    assert result.code == 2, result.err
    assert result.error_line == f"error: {parent} is not writable, so {env} cannot be deployed"
    assert list(parent.iterdir()) == []


def test_errors_in_json(project: Path, live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = vk(capsys, "deploy", project, "--env", live, "--python", "3.99", "--json")
    assert result.code == 2
    error = result.json["error"]
    assert result.json["ok"] is False
    assert error["code"] == "interpreter"
    assert error["message"].startswith("no usable Python interpreter for '3.99'")
    assert result.err == ""


def test_process_entry_point_reports_errors_too(project: Path, tmp_path: Path) -> None:
    result = vk_process("deploy", tmp_path / "nowhere", "--env", tmp_path / ".venv")
    assert result.code == 2
    assert "nowhere" in result.err
