"""How venvkeeper calls uv: one interpreter for every call, an honest lock check, a true cause.

Every test runs the real uv against the local index; the failures are made for real (a pinned
Python this host lacks, an interpreter below requires-python, a cache under a regular file, an
index that is down), and each asserts what the operator reads: the exit code, the one error line,
the hint, and ``cause`` in the JSON error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from support.index import LocalIndex
from support.pythons import real_python
from venvkeeper.gateways import uv as uvcmd
from vk import commit_all, generations, leftovers, run_in_env, snapshot, vk

# Words of hints that blame something else: a cache problem must not send the operator there.
WRONG_CAUSES = ("install that Python", "pyenv install", "uv lock", "index", "requires-python")


def _python(minor: str) -> Path:
    return real_python(minor) or pytest.skip(f"CPython {minor} not found under pyenv or PATH")


def _absent(minor: str) -> str:
    if real_python(minor) is not None:
        pytest.skip(f"CPython {minor} is installed here, so a .python-version naming it is satisfiable")
    return minor


def _pin(project: Path, version: str) -> None:
    (project / ".python-version").write_text(f"{version}\n")
    commit_all(project, f"pin Python {version}")


def test_a_python_version_pin_this_host_lacks_does_not_decide_the_interpreter(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # uv's own discovery (used by the lock check and export before) follows .python-version and
    # fails: "uv.lock: uv cannot use it ... run `uv lock`".
    project = make_project("single")
    _pin(project, _absent("3.14"))
    python = _python("3.12")
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", python, "--json")

    assert result.code == 0, result.out
    assert (
        run_in_env(env, "python", "-c", "import sys; print(sys.version_info[:2])").stdout.strip() == "(3, 12)"
    )
    assert run_in_env(env, "single").returncode == 0


def test_export_takes_python_and_names_the_pin_it_cannot_satisfy(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")
    missing = _absent("3.14")
    _pin(project, missing)

    refused = vk(capsys, "export", project, "--format", "requirements")

    assert refused.code == 2, refused.out + refused.err
    assert f"no usable Python interpreter for the project's .python-version ({missing})" in refused.error_line
    assert "--python" in refused.err  # the hint names the way out

    given = vk(capsys, "export", project, "--format", "requirements", "--python", _python("3.12"))

    assert given.code == 0, given.err
    assert "tinyutil==" in given.out


def test_the_projects_python_off_path_as_under_cron(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    uv_bin: Path,
) -> None:
    # cron's PATH has no interpreter that requires-python allows; the one named by --python is used
    # for the lock check too (uv's discovery would find none: "No interpreter found").
    project = make_project("single")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"')
    )
    python = _python("3.12")
    subprocess.run([uv_bin, "lock", "--quiet", "--python", python], cwd=project, check=True, timeout=120)
    commit_all(project, "needs 3.12")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", python)

    assert result.code == 0, result.err
    assert run_in_env(env, "single").returncode == 0


def test_update_relocks_with_the_live_interpreter_not_the_pin(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "relock-failed ... check that the index is reachable", from `uv lock` finding no 3.14.
    project = make_project("updatable")
    _pin(project, _absent("3.14"))
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env, "--python", _python("3.12")).code == 0

    result = vk(capsys, "update", project, "--env", env, "--dry-run", "--json")

    assert result.code == 0, result.out
    assert result.json["outcome"] == "no-updates", result.json


def test_an_interpreter_outside_requires_python_is_refused_at_once_naming_both(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")  # requires-python = ">=3.11"
    python = _python("3.10")
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", python)
    as_json = vk(capsys, "deploy", project, "--env", env, "--python", python, "--json")

    assert result.code == 2
    assert result.error_line == (
        f"error: {python} is Python {version}, outside the project's requires-python >=3.11 "
        f"({project / 'pyproject.toml'})"
    )
    assert as_json.json["error"]["cause"] == "interpreter-unsupported"
    assert as_json.json["error"]["code"] == "interpreter"
    # Refused before anything was built or installed.
    assert generations(env) == []
    assert leftovers(env) == []
    assert not list((env.parent / ".venv.venvkeeper").glob("wheels/*/*"))


def _uv(uv_bin: Path, *args: str | Path, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "UV_CACHE_DIR": str(cache)}
    return subprocess.run(
        [uv_bin, *map(str, args)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_lock_check_is_true_on_a_fresh_cache(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fresh_uv_cache: Path,
    uv_bin: Path,
) -> None:
    project = make_project("dynamic")
    python = _python("3.12")
    # The premise: uv's offline check alone cannot answer on an empty cache (it must build the
    # project's metadata, and hatchling is not cached), so a deploy that trusted it never healed.
    offline = _uv(
        uv_bin, "lock", "--check", "--offline", "--python", python, cwd=project, cache=tmp_path / "empty"
    )
    assert offline.returncode != 0
    assert "not found in the cache" in offline.stderr
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", python)

    assert result.code == 0, result.err
    assert run_in_env(env, "dynamic").stdout.strip() == "dynamic 0.4.0 with tinyutil 1.1.0"
    # The online retry filled the cache: offline, the same check now passes.
    again = _uv(uv_bin, "lock", "--check", "--offline", "--python", python, cwd=project, cache=fresh_uv_cache)
    assert again.returncode == 0, again.stderr


def _add_dynamic_dependency(project: Path, requirement: str) -> None:
    hook = project / "hatch_build.py"
    hook.write_text(hook.read_text().replace('["tinyutil"]', f'["tinyutil", "{requirement}"]'))
    commit_all(project, f"depend on {requirement}")


def test_a_stale_lock_on_an_empty_cache_is_called_out_of_date(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fresh_uv_cache: Path,
) -> None:
    # Before: "No solution found ... hatchling was not found in the cache" (uv offline).
    project = make_project("dynamic")
    _add_dynamic_dependency(project, "tinydb")
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", _python("3.12"), "--json")

    assert result.code == 2
    error = result.json["error"]
    assert (error["code"], error["cause"]) == ("lock", "lock-out-of-date")
    assert error["message"] == f"{project / 'uv.lock'}: out of date"
    assert "run `uv lock`" in error["hint"]
    assert generations(env) == []


def test_an_unsatisfiable_new_requirement_is_no_solution_with_uvs_reasons(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("dynamic")
    _add_dynamic_dependency(project, "tinydb>=99")
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", _python("3.12"), "--json")

    assert result.code == 2
    error = result.json["error"]
    assert error["cause"] == "no-solution"
    assert "tinydb" in error["message"]
    assert "no set of versions" in error["hint"]


def test_an_unusable_cache_is_named_as_the_cause(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = make_project("single")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = blocker / "uv-cache"  # cannot be created, not even by root
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--python", _python("3.12"), "--json")

    assert result.code == 1
    error = result.json["error"]
    assert error["cause"] == "cache-unusable"
    assert str(cache) in error["hint"]
    assert not [words for words in WRONG_CAUSES if words in error["hint"]], error["hint"]


def test_a_missing_interpreter_is_interpreter_missing(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")

    result = vk(capsys, "deploy", project, "--env", tmp_path / ".venv", "--python", "3.99", "--json")

    assert result.code == 2
    error = result.json["error"]
    assert error["cause"] == "interpreter-missing"
    assert "install that Python" in error["hint"]
    assert "uv lock" not in error["hint"]


def test_an_index_that_is_down_is_index_unreachable(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fresh_uv_cache: Path,
    index: LocalIndex,
) -> None:
    project = make_project("single")
    index.stop()

    result = vk(capsys, "deploy", project, "--env", tmp_path / ".venv", "--python", _python("3.12"), "--json")

    assert result.code == 1
    error = result.json["error"]
    assert error["cause"] == "index-unreachable", error
    assert "reachable" in error["hint"]
    assert "Connection refused" in error["message"]
    assert "uv lock" not in error["hint"]


def test_a_failing_build_backend_is_build_failed_with_its_output(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("single")
    (project / "setup.py").write_text("raise SystemExit('the backend says: no compiler here')\n")
    commit_all(project, "a build that fails")

    result = vk(capsys, "deploy", project, "--env", tmp_path / ".venv", "--python", _python("3.12"), "--json")

    assert result.code == 1
    error = result.json["error"]
    assert (error["code"], error["cause"]) == ("build", "build-failed")
    assert error["message"] == "member single (./) failed to build"
    assert "the backend says: no compiler here" in error["detail"]
    assert "build backend" in error["hint"]


def test_status_and_deploy_json_show_where_uvs_cache_is(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    hermetic: dict[str, str],
) -> None:
    project = make_project("single")
    env = tmp_path / ".venv"

    deployed = vk(capsys, "deploy", project, "--env", env, "--json")
    status = vk(capsys, "status", "--env", env, "--json")
    text = vk(capsys, "status", "--env", env)

    assert deployed.code == 0, deployed.err
    expected = {"dir": hermetic["UV_CACHE_DIR"], "why": "UV_CACHE_DIR"}
    assert deployed.json["uv_cache"] == expected
    assert status.json["uv_cache"] == expected
    assert f"uv cache: {hermetic['UV_CACHE_DIR']} (UV_CACHE_DIR)" in text.out


def test_a_projects_own_cache_dir_is_the_cache_used_recorded_and_shown(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # uv reads `cache-dir` from the project's [tool.uv]: venvkeeper asks uv from the project, so
    # what it shows, records (verify's poisoned-cache check) and cleans (--repair) is that cache.
    project = make_project("single")
    own = tmp_path / "project-cache"
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.uv]\ncache-dir = "{own}"\n')
    commit_all(project, "the project's own uv cache")
    monkeypatch.delenv("UV_CACHE_DIR")
    env = tmp_path / "srv" / ".venv"

    deployed = vk(capsys, "deploy", project, "--env", env, "--json")

    assert deployed.code == 0, deployed.out + deployed.err
    assert deployed.json["uv_cache"]["dir"] == str(own)
    assert any(own.glob("archive-v*")), "uv did not install from the project's cache"
    status = vk(capsys, "status", "--env", env, "--json")
    assert status.json["uv_cache"]["dir"] == str(own)


def test_without_a_usable_default_the_cache_goes_beside_the_environment(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = make_project("single")
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    # uv's default is $XDG_CACHE_HOME/uv: unusable here, even for root.
    monkeypatch.delenv("UV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    env = tmp_path / ".venv"

    result = vk(capsys, "deploy", project, "--env", env, "--json")

    assert result.code == 0, result.out
    cache = tmp_path / ".venv.venvkeeper" / "uv-cache"
    assert result.json["uv_cache"]["dir"] == str(cache)
    assert f"{blocker} is not a directory" in result.json["uv_cache"]["why"]
    assert any(cache.glob("archive-v*")), "uv did not use the chosen cache"
    assert run_in_env(env, "single").returncode == 0
    shutil.rmtree(cache)


def _can_mount_read_only() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _can_mount_read_only(),
    reason="needs `unshare --mount` (root or user namespaces) for a read-only mount",
)
def test_the_lock_check_on_a_fresh_cache_from_a_read_only_tree(
    make_project: Callable[..., Path], tmp_path: Path, fresh_uv_cache: Path
) -> None:
    # The online retry builds the member's metadata (hatchling, editable): in a copy, never in the tree.
    project = make_project("dynamic")
    before = snapshot(project)
    env = tmp_path / ".venv"
    out = tmp_path / "pylock.toml"
    script = (
        'mount --bind -o ro "$1" "$1" && ! touch "$1/probe" 2>/dev/null && '
        '"$0" -m venvkeeper export "$1" --format pylock -o "$3" && '
        'exec "$0" -m venvkeeper deploy "$1" --env "$2" --python "$4"'
    )
    proc = subprocess.run(
        [
            *("unshare", "--mount", "--propagation", "private", "sh", "-c", script),
            *(sys.executable, str(project), str(env), str(out), str(_python("3.12"))),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )

    assert proc.returncode == 0, proc.stderr
    assert "tinyutil" in out.read_text()
    assert run_in_env(env, "dynamic").returncode == 0
    assert snapshot(project) == before


def test_a_checks_throwaway_cache_is_chosen_without_deadlock(monkeypatch: pytest.MonkeyPatch) -> None:
    """uv_cache() asks uv for its python dir while holding the cache lock; uv_env must not take the
    lock again on that path (a deploy --check hung on every host without UV_PYTHON_INSTALL_DIR)."""
    monkeypatch.delenv("UV_PYTHON_INSTALL_DIR", raising=False)
    found: dict[str, dict[str, str]] = {}

    def check() -> None:
        with uvcmd.throwaway_cache():
            found["env"] = uvcmd.uv_env()

    worker = threading.Thread(target=check, daemon=True)  # a deadlock must fail the test, not hang it
    worker.start()
    worker.join(60)
    assert "env" in found, "uv_env() did not return: the cache lock was taken twice"
    assert found["env"]["UV_CACHE_DIR"].startswith(found["env"]["TMPDIR"].removesuffix("/tmp"))
    assert found["env"]["TMPDIR"].endswith("/tmp")
