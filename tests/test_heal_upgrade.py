"""``venvkeeper doctor`` and ``heal`` across interpreter upgrades (docs/doctor.md).

The interpreters are "store" copies of real CPythons (``support.pythons``): replacing the store's
``bin/python3`` with another minor is a Homebrew-style upgrade under a fixed path, renaming the store
away is a Nix-style garbage collection. Plain environments are rebuilt into a new directory that
replaces the old one only when complete; environments ``venvkeeper deploy`` built are redeployed
from their recorded project and lock as a new generation.

The tests need real CPython 3.11 (and 3.12 for the upgrades) and are skipped, saying which is
missing, without them.
"""

from __future__ import annotations

import email.parser
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.index import LocalIndex
from support.process import run
from support.pythons import install_store_python, real_python
from venvkeeper.gateways.uv import find_uv
from vk import Outcome, commit_all, generations, leftovers, run_in_env, snapshot, vk

# -- interpreters --------------------------------------------------------------------------------


def _real_python(minor: str) -> Path:
    found = real_python(minor)
    if found is None:
        pytest.skip(f"CPython {minor} not found under pyenv or on PATH")
    return found


@pytest.fixture
def py311() -> Path:
    return _real_python("3.11")


@pytest.fixture
def py312() -> Path:
    return _real_python("3.12")


# -- helpers -------------------------------------------------------------------------------------


def _doctor(capsys: pytest.CaptureFixture[str], env: Path) -> Outcome:
    return vk(capsys, "doctor", "--env", env, "--json")


def _heal(capsys: pytest.CaptureFixture[str], env: Path, *args: str | Path) -> Outcome:
    return vk(capsys, "heal", "--env", env, "--json", *args)


def _codes(outcome: Outcome) -> list[str]:
    return [f["code"] for f in outcome.json["findings"]]


def _finding(outcome: Outcome, code: str) -> dict[str, Any]:
    found = [f for f in outcome.json["findings"] if f["code"] == code]
    assert len(found) == 1, outcome.out
    return found[0]


def _outcomes(outcome: Outcome) -> dict[str, str]:
    """code -> outcome of heal's report."""
    return {o["code"]: o["outcome"] for o in outcome.json["outcomes"]}


def _actions(outcome: Outcome) -> list[str]:
    return [a["action"] for a in outcome.json["actions"]]


def _python_dirs(env: Path) -> list[str]:
    """The ``lib/pythonX.Y`` directories of an environment (``python3.11``, ...)."""
    return sorted(p.name for p in (env / "lib").iterdir() if p.name.startswith("python"))


def _distributions(site: Path) -> dict[str, str]:
    """name -> version of every distribution in ``site``, from its METADATA."""
    found = {}
    for metadata in site.glob("*.dist-info/METADATA"):
        headers = email.parser.HeaderParser().parsestr(metadata.read_text(encoding="utf-8"))
        found[headers["Name"].lower()] = headers["Version"]
    return found


def _python_version(env: Path) -> str:
    """``X.Y`` of the environment's ``bin/python``."""
    ran = run([env / "bin" / "python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    return ran.stdout.strip()


def _pyvenv_cfg(env: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (env / "pyvenv.cfg").read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _plain_venv(env: Path, python: Path, environ: dict[str, str] | None = None) -> None:
    """``uv venv`` on ``python`` with tinyweb 1.0.0 (and so tinyutil) installed by uv."""
    run([find_uv(), "venv", "--quiet", "--python", python, env], env=environ)
    run(
        [find_uv(), "pip", "install", "--quiet", "--python", env / "bin" / "python", "tinyweb==1.0.0"],
        env=environ,
    )


def _assert_tinyweb_works(env: Path) -> None:
    ran = run_in_env(env, "tinyweb")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "tinyweb 1.0.0"


def _assert_rebuilt_for_312(
    capsys: pytest.CaptureFixture[str], env: Path, before: dict[str, str], beside: list[str]
) -> None:
    """``env`` now holds ``before``'s distributions for 3.12, runs, passes doctor, left nothing beside it."""
    assert _python_dirs(env) == ["python3.12"]
    assert _distributions(env / "lib" / "python3.12" / "site-packages") == before
    assert _python_version(env) == "3.12"
    _assert_tinyweb_works(env)
    again = _doctor(capsys, env)
    assert again.code == 0, again.out + again.err
    assert again.json["packages_python"] == "3.12"
    assert sorted(os.listdir(env.parent)) == beside


# -- plain environments --------------------------------------------------------------------------


def test_minor_upgrade_under_a_fixed_path_is_rebuilt(
    py311: Path, py312: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, env = tmp_path / "store", tmp_path / "srv" / ".venv"
    python3 = install_store_python(store, py311, name="python3")
    _plain_venv(env, python3)
    before = _distributions(env / "lib" / "python3.11" / "site-packages")
    assert before == {"tinyweb": "1.0.0", "tinyutil": "1.1.0"}
    _assert_tinyweb_works(env)
    beside = sorted(os.listdir(env.parent))

    install_store_python(store, py312, name="python3")  # the same path now runs 3.12
    broken = run_in_env(env, "tinyweb")
    assert broken.returncode != 0
    assert "ModuleNotFoundError" in broken.stderr or "ImportError" in broken.stderr

    doctor = _doctor(capsys, env)
    assert doctor.code == 1, doctor.out + doctor.err
    assert (doctor.json["command"], doctor.json["ok"], doctor.json["exit_code"]) == ("doctor", False, 1)
    assert doctor.json["kind"] == "venv"
    mismatch = _finding(doctor, "version-mismatch")
    assert mismatch["path"] == "lib/python3.11"
    assert mismatch["severity"] == "error"
    assert mismatch["repair"]
    assert doctor.json["interpreter"]["version"].startswith("3.12.")
    assert doctor.json["interpreter"]["runs"] is True
    assert doctor.json["packages_python"] == "3.11"
    text = vk(capsys, "doctor", "--env", env)
    assert text.code == 1
    assert "version-mismatch" in text.out

    heal = _heal(capsys, env)

    assert heal.code == 0, heal.out + heal.err
    assert heal.json["command"] == "heal"
    assert (heal.json["ok"], heal.json["changed"], heal.json["dry_run"]) == (True, True, False)
    assert _outcomes(heal)["version-mismatch"] == "repaired"
    assert all(o["outcome"] == "repaired" for o in heal.json["outcomes"]), heal.out
    assert "rebuild" in _actions(heal)
    assert heal.json["interpreter"]["version"].startswith("3.12.")
    assert heal.json["generation"] is None
    _assert_rebuilt_for_312(capsys, env, before, beside)

    # Idempotent: a second heal changes nothing.
    after = snapshot(env)
    second = _heal(capsys, env)
    assert second.code == 0, second.out + second.err
    assert second.json["changed"] is False
    assert second.json["actions"] == []
    assert snapshot(env) == after
    assert sorted(os.listdir(env.parent)) == beside


def test_python_option_rebuilds_for_another_minor(
    py311: Path, py312: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "srv" / ".venv"
    _plain_venv(env, py311)
    before = _distributions(env / "lib" / "python3.11" / "site-packages")
    beside = sorted(os.listdir(env.parent))
    healthy = _doctor(capsys, env)
    assert healthy.code == 0, healthy.out + healthy.err

    heal = _heal(capsys, env, "--python", py312)

    assert heal.code == 0, heal.out + heal.err
    assert heal.json["changed"] is True, heal.out
    assert "rebuild" in _actions(heal)
    assert heal.json["interpreter"]["version"].startswith("3.12.")
    assert Path(_pyvenv_cfg(env)["home"]).resolve() == py312.resolve().parent
    _assert_rebuilt_for_312(capsys, env, before, beside)


def test_failed_rebuild_leaves_the_environment_untouched(
    py311: Path,
    py312: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    index: LocalIndex,
    session_uv_cache: Path,
    fresh_uv_cache: Path,
) -> None:
    store, env = tmp_path / "store", tmp_path / "srv" / ".venv"
    python3 = install_store_python(store, py311, name="python3")
    # Built with the session's cache: the test's own cache (fresh_uv_cache) stays empty for heal.
    _plain_venv(env, python3, environ={**os.environ, "UV_CACHE_DIR": str(session_uv_cache)})
    assert not any(fresh_uv_cache.iterdir())
    install_store_python(store, py312, name="python3")
    index.unpublish("tinyweb", "1.0.0")
    index.unpublish("tinyutil", "1.1.0")
    before, beside = snapshot(env), sorted(os.listdir(env.parent))

    heal = _heal(capsys, env)

    assert heal.code == 1, heal.out + heal.err
    assert heal.json["ok"] is False
    (outcome,) = [o for o in heal.json["outcomes"] if o["code"] == "version-mismatch"]
    assert outcome["outcome"] == "still-broken", heal.out
    reason = outcome["reason"] or ""
    # The package uv could not get, or uv's own account of the failure.
    assert any(word in reason for word in ("tinyweb", "tinyutil", "uv", "No solution found")), reason
    assert snapshot(env) == before
    assert sorted(os.listdir(env.parent)) == beside
    # Still what it was: doctor reports the same mismatch.
    assert _codes(_doctor(capsys, env)).count("version-mismatch") == 1


# -- environments venvkeeper deployed ------------------------------------------------------------


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("single")


def _deploy(capsys: pytest.CaptureFixture[str], project: Path, env: Path, python: Path) -> None:
    result = vk(capsys, "deploy", project, "--env", env, "--python", python, "--json")
    assert result.code == 0, result.out + result.err
    assert result.json["generation"] == 1


def _assert_single_runs(env: Path) -> None:
    ran = run_in_env(env, "single")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("single 0.1.0 (tinyutil ")


def _status(capsys: pytest.CaptureFixture[str], env: Path) -> dict[str, Any]:
    result = vk(capsys, "status", "--env", env, "--json")
    assert result.code == 0, result.out + result.err
    return result.json


def test_deployed_environment_is_redeployed_after_a_minor_upgrade(
    py311: Path, py312: Path, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, env = tmp_path / "store", tmp_path / "srv" / ".venv"
    python3 = install_store_python(store, py311, name="python3")
    _deploy(capsys, project, env, python3)
    _assert_single_runs(env)
    install_store_python(store, py312, name="python3")
    assert run_in_env(env, "single").returncode != 0

    doctor = vk(capsys, "doctor", "--env", env)
    assert doctor.code == 1, doctor.out + doctor.err
    assert "version-mismatch" in doctor.out
    as_json = _doctor(capsys, env)
    assert as_json.json["kind"] == "generation"
    assert _finding(as_json, "version-mismatch")["path"] == "lib/python3.11"

    heal = _heal(capsys, env)

    assert heal.code == 0, heal.out + heal.err
    assert heal.json["generation"] == 2
    assert "redeploy" in _actions(heal)
    assert _outcomes(heal)["version-mismatch"] == "repaired"
    assert generations(env) == ["0001", "0001.json", "0002", "0002.json"]
    assert str(env.readlink()).endswith("generations/0002")
    assert _python_dirs(env) == ["python3.12"]
    assert _python_version(env) == "3.12"
    _assert_single_runs(env)
    verify = vk(capsys, "verify", "--env", env)
    assert verify.code == 0, verify.out + verify.err
    assert _doctor(capsys, env).code == 0
    assert leftovers(env) == []
    # The previous generation is kept: a rollback is possible.
    status = _status(capsys, env)
    assert status["current"] == 2
    assert [g["number"] for g in status["generations"]] == [1, 2]
    previous = env.parent / ".venv.venvkeeper" / "generations" / "0001"
    assert _python_dirs(previous) == ["python3.11"]

    # Idempotent: no third generation.
    second = _heal(capsys, env)
    assert second.code == 0, second.out + second.err
    assert second.json["changed"] is False
    assert generations(env) == ["0001", "0001.json", "0002", "0002.json"]


def test_dangling_interpreter_of_a_deployed_environment_is_redeployed(
    py311: Path, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, env = tmp_path / "store-a", tmp_path / "srv" / ".venv"
    python = install_store_python(store, py311)
    assert python.name == "python3.11"
    _deploy(capsys, project, env, python)
    store.rename(tmp_path / "collected")  # the store path is gone, as after a Nix GC

    doctor = _doctor(capsys, env)
    assert doctor.code == 1, doctor.out + doctor.err
    dangling = _finding(doctor, "interpreter-dangling")
    assert dangling["path"] == "bin/python"
    assert dangling["severity"] == "error"
    assert doctor.json["interpreter"]["runs"] is False

    heal = _heal(capsys, env)

    assert heal.code == 0, heal.out + heal.err
    assert _outcomes(heal)["interpreter-dangling"] == "repaired"
    assert heal.json["generation"] == 2
    assert generations(env) == ["0001", "0001.json", "0002", "0002.json"]
    assert heal.json["interpreter"]["version"].startswith("3.11.")
    assert "store-a" not in heal.json["interpreter"]["path"]
    assert "store-a" not in _pyvenv_cfg(env)["home"]
    assert _python_version(env) == "3.11"
    _assert_single_runs(env)
    verify = vk(capsys, "verify", "--env", env)
    assert verify.code == 0, verify.out + verify.err
    assert _doctor(capsys, env).code == 0
    assert leftovers(env) == []


def test_heal_does_not_deploy_a_lock_that_changed_since_the_deploy(
    py311: Path,
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    store, env = tmp_path / "store-a", tmp_path / "srv" / ".venv"
    python = install_store_python(store, py311)
    _deploy(capsys, project, env, python)
    publish("tinyutil", "1.2.0")
    run([find_uv(), "lock", "--upgrade-package", "tinyutil"], cwd=project)
    assert 'version = "1.2.0"' in (project / "uv.lock").read_text()
    commit_all(project, "tinyutil 1.2.0")
    store.rename(tmp_path / "collected")
    link = env.readlink()
    live = env.resolve()
    before = snapshot(live)

    heal = _heal(capsys, env)

    assert heal.code == 1, heal.out + heal.err
    (outcome,) = [o for o in heal.json["outcomes"] if o["code"] == "interpreter-dangling"]
    assert outcome["outcome"] in ("skipped", "still-broken"), heal.out
    reason = outcome["reason"] or ""
    assert "lock" in reason, reason
    assert "venvkeeper deploy" in reason, reason
    assert env.readlink() == link
    assert generations(env) == ["0001", "0001.json"]
    assert snapshot(live) == before
    assert leftovers(env) == []
    # The lock at the deploy is what is installed: tinyutil 1.2.0 was not.
    site = live / "lib" / "python3.11" / "site-packages"
    assert _distributions(site)["tinyutil"] == "1.1.0"
