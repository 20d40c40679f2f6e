"""``venvkeeper doctor`` and ``venvkeeper heal``: environments that broke without anyone touching them.

Every environment here is built with real uv on a CPython 3.11 (a Nix-style copy under ``tmp_path``
when the test replaces or moves the interpreter, else the machine's own, which is never written to)
and then broken the way it breaks in the field: the store path of its interpreter goes away, the
directory is moved or copied, a platform installed packages with ``--prefix`` or ``--target``.
What a user sees is asserted: exit codes, the findings' codes and paths, files on disk, and that
the console script runs afterwards.

Minor-version upgrades and environments venvkeeper deployed are tests/test_heal_upgrade.py's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.index import LocalIndex
from support.process import run
from support.pythons import install_store_python, real_python
from support.wheels import make_wheel
from venvkeeper.gateways.uv import find_uv
from vk import Outcome, run_in_env, site_packages, snapshot, vk

# -- helpers -------------------------------------------------------------------------------------


def _python(minor: str) -> Path:
    python = real_python(minor)
    if python is None:
        pytest.skip(f"CPython {minor} not found under pyenv or on PATH")
    return python


def _build_env(env: Path, python: Path, *requirements: str | Path) -> Path:
    """``uv venv`` on ``python`` with tinyweb (and tinyutil) installed from the local index."""
    run([find_uv(), "venv", "--python", python, env])
    run([find_uv(), "pip", "install", "--python", env / "bin" / "python", "tinyweb", *requirements])
    return env


def _store_env(tmp_path: Path) -> tuple[Path, Path]:
    """An environment on a store interpreter at ``tmp_path/store-a``: (env, store python)."""
    store_python = install_store_python(tmp_path / "store-a", _python("3.11"))
    return _build_env(tmp_path / "env", store_python), store_python


def _dangling_env(tmp_path: Path) -> tuple[Path, Path]:
    """The store moved from store-a to store-b, as a Nix upgrade leaves it: (env, new python)."""
    env, _ = _store_env(tmp_path)
    (tmp_path / "store-a").rename(tmp_path / "store-b")
    return env, tmp_path / "store-b" / "bin" / "python3.11"


def _moved_env(tmp_path: Path) -> Path:
    """An environment built at tmp_path/env and then ``mv``-ed to tmp_path/env2."""
    env = _build_env(tmp_path / "env", _python("3.11"))
    return env.rename(tmp_path / "env2")


def _package_dir(tmp_path: Path, layout: str) -> Path:
    """``uv pip install --prefix`` or ``--target`` into tmp_path/pkgs (no venv, like a platform does)."""
    directory = tmp_path / "pkgs"
    run([find_uv(), "pip", "install", "--python", _python("3.11"), f"--{layout}", directory, "tinyweb"])
    return directory


def _doctor(capsys: pytest.CaptureFixture[str], env: Path, *args: str | Path) -> Outcome:
    return vk(capsys, "doctor", "--env", env, "--json", *args)


def _heal(capsys: pytest.CaptureFixture[str], env: Path, *args: str | Path) -> Outcome:
    return vk(capsys, "heal", "--env", env, "--json", *args)


def _findings(outcome: Outcome, code: str) -> list[dict[str, Any]]:
    return [f for f in outcome.json["findings"] if f["code"] == code]


def _found(outcome: Outcome) -> set[tuple[str, str, str]]:
    """(code, severity, path) of every finding."""
    return {(f["code"], f["severity"], f["path"]) for f in outcome.json["findings"]}


def _outcomes(outcome: Outcome) -> set[tuple[str, str, str]]:
    """(code, path, outcome) of every outcome heal reports."""
    return {(o["code"], o["path"], o["outcome"]) for o in outcome.json["outcomes"]}


def _actions(outcome: Outcome) -> set[str]:
    return {a["action"] for a in outcome.json["actions"]}


def _assert_healthy(capsys: pytest.CaptureFixture[str], env: Path) -> dict[str, Any]:
    after = _doctor(capsys, env)
    assert after.code == 0, after.out + after.err
    assert (after.json["ok"], after.json["exit_code"]) == (True, 0)
    assert not [f for f in after.json["findings"] if f["severity"] != "note"], after.out
    return after.json


def _assert_runs(env: Path) -> None:
    """bin/tinyweb runs, and bin/python is this environment's (pyvenv.cfg found beside it)."""
    ran = run_in_env(env, "tinyweb")
    assert (ran.returncode, ran.stdout) == (0, "tinyweb 1.0.0\n"), ran.stderr
    prefix = run_in_env(env, "python", "-c", "import sys, tinyweb; print(sys.prefix)")
    assert (prefix.returncode, prefix.stdout) == (0, f"{env}\n"), prefix.stderr


def _pyvenv_cfg(env: Path) -> dict[str, str]:
    lines = (env / "pyvenv.cfg").read_text().splitlines()
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in lines if line.strip())}


def _dist_infos(site: Path) -> set[str]:
    return {p.name for p in site.glob("*.dist-info")}


def _first_line(path: Path) -> str:
    return path.read_text().splitlines()[0]


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Paths that differ; bytecode is left out (running the scripts writes it, unless
    PYTHONDONTWRITEBYTECODE is set, as it is on some machines and not in CI)."""
    return {
        path
        for path in before.keys() | after.keys()
        if before.get(path) != after.get(path) and "__pycache__" not in path
    }


# -- interpreter gone, moved, replaced -----------------------------------------------------------


def test_dangling_store_interpreter_is_found_and_healed_with_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env, new_python = _dangling_env(tmp_path)
    old_store = tmp_path / "store-a"
    dist_infos = _dist_infos(site_packages(env))
    # What the service sees: the kernel cannot find the script's interpreter.
    broken = subprocess.run(["sh", "-c", '"$0"', env / "bin" / "tinyweb"], capture_output=True, check=False)
    assert broken.returncode == 127

    result = _doctor(capsys, env)

    assert result.code == 1, result.out + result.err
    report = result.json
    assert (report["command"], report["ok"], report["exit_code"]) == ("doctor", False, 1)
    assert (report["env"], report["directory"], report["kind"]) == (str(env), str(env), "venv")
    assert report["interpreter"]["runs"] is False
    assert (report["packages_python"], report["managed_by"]) == ("3.11", None)
    expected = {("interpreter-dangling", "error", "bin/python"), ("home-missing", "error", "pyvenv.cfg")}
    assert expected <= _found(result)
    (dangling,) = _findings(result, "interpreter-dangling")
    assert str(old_store) in dangling["seen"]
    assert dangling["repair"]
    (home,) = _findings(result, "home-missing")
    assert str(old_store / "bin") in home["seen"]
    text = vk(capsys, "doctor", "--env", env)
    assert text.code == 1
    assert "bin/python" in text.out

    healed = _heal(capsys, env, "--python", new_python)

    assert healed.code == 0, healed.out + healed.err
    report = healed.json
    assert (report["command"], report["ok"], report["exit_code"]) == ("heal", True, 0)
    assert (report["dry_run"], report["forced"], report["changed"], report["generation"]) == (
        False,
        False,
        True,
        None,
    )
    assert report["interpreter"]["path"] == str(new_python)
    assert report["interpreter"]["version"].startswith("3.11.")
    assert "relink" in _actions(healed)
    assert {o["outcome"] for o in report["outcomes"]} == {"repaired"}
    assert {"interpreter-dangling", "home-missing"} <= {o["code"] for o in report["outcomes"]}
    assert (env / "bin" / "python").resolve() == new_python
    assert _pyvenv_cfg(env)["home"] == str(tmp_path / "store-b" / "bin")
    assert _dist_infos(site_packages(env)) == dist_infos
    _assert_runs(env)
    _assert_healthy(capsys, env)


def test_dangling_interpreter_healed_with_one_found_on_the_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --python: the store is gone for good, heal takes a real 3.11 (PATH or pyenv)."""
    env, _ = _store_env(tmp_path)
    shutil.rmtree(tmp_path / "store-a")

    healed = _heal(capsys, env)

    assert healed.code == 0, healed.out + healed.err
    assert {o["outcome"] for o in healed.json["outcomes"]} == {"repaired"}
    python = (env / "bin" / "python").resolve()
    assert python.is_file()
    assert tmp_path not in python.parents
    assert healed.json["interpreter"]["version"].startswith("3.11.")
    # A real executable (not a pyenv shim) whose directory is the new home.
    assert Path(_pyvenv_cfg(env)["home"]).is_dir()
    assert "store-a" not in (env / "pyvenv.cfg").read_text()
    _assert_runs(env)
    _assert_healthy(capsys, env)


def test_interpreter_link_to_another_python_is_pointed_back_at_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env, store_python = _store_env(tmp_path)
    link = env / "bin" / "python"
    link.unlink()
    link.symlink_to(_python("3.12"))

    result = _doctor(capsys, env)

    assert result.code == 1, result.out + result.err
    # version-mismatch may be reported too (a 3.12 in front of lib/python3.11); the link is the cause.
    assert ("interpreter-mismatch", "error", "bin/python") in _found(result)

    healed = _heal(capsys, env)

    assert healed.code == 0, healed.out + healed.err
    assert ("interpreter-mismatch", "bin/python", "repaired") in _outcomes(healed)
    assert link.resolve() == store_python
    assert _pyvenv_cfg(env)["home"] == str(store_python.parent)
    _assert_runs(env)
    _assert_healthy(capsys, env)


# -- moved and copied environments ---------------------------------------------------------------


def test_moved_environment_gets_its_paths_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _moved_env(tmp_path)
    old = tmp_path / "env"
    before = snapshot(env)

    result = _doctor(capsys, env)

    assert result.code == 1, result.out + result.err
    found = _found(result)
    assert ("stale-shebang", "error", "bin/tinyweb") in found
    assert ("stale-activate", "warning", "bin/activate") in found
    assert {code for code, _, _ in found} == {"stale-shebang", "stale-activate"}
    (shebang,) = _findings(result, "stale-shebang")
    assert str(old / "bin" / "python") in shebang["seen"]
    text = vk(capsys, "doctor", "--env", env)
    assert text.code == 1
    assert "bin/tinyweb" in text.out

    healed = _heal(capsys, env)

    assert healed.code == 0, healed.out + healed.err
    assert _actions(healed) == {"rewrite-paths"}
    assert {o["outcome"] for o in healed.json["outcomes"]} == {"repaired"}
    assert _first_line(env / "bin" / "tinyweb") == f"#!{env}/bin/python"
    assert f"VIRTUAL_ENV='{env}'" in (env / "bin" / "activate").read_text()
    assert str(old) + "'" not in (env / "bin" / "activate").read_text()
    _assert_runs(env)
    # The rewritten script's RECORD entry was updated with it.
    verified = vk(capsys, "verify", "--env", env, "--json")
    assert verified.code == 0, verified.out + verified.err
    # Only the files that named the old place changed.
    changed = _changed(before, snapshot(env))
    assert {"bin/tinyweb", "bin/activate"} <= changed
    assert all(p.startswith("bin/") or p.endswith(".dist-info/RECORD") for p in changed), changed
    _assert_healthy(capsys, env)


def test_copied_environment_is_healed_and_the_original_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _build_env(tmp_path / "env", _python("3.11"))
    copy = tmp_path / "env-copy"
    shutil.copytree(env, copy, symlinks=True)
    original = snapshot(env)

    result = _doctor(capsys, copy)

    assert result.code == 1, result.out + result.err
    (shebang,) = _findings(result, "stale-shebang")
    assert shebang["path"] == "bin/tinyweb"
    # The other environment is named, so that a user sees whose interpreter the script would run.
    assert str(env / "bin" / "python") in shebang["seen"]
    assert "environment" in shebang["seen"]

    healed = _heal(capsys, copy)

    assert healed.code == 0, healed.out + healed.err
    assert _first_line(copy / "bin" / "tinyweb") == f"#!{copy}/bin/python"
    _assert_runs(copy)
    assert snapshot(env) == original
    _assert_runs(env)
    _assert_healthy(capsys, copy)


def test_heal_twice_changes_nothing_the_second_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Moved, and its store upgraded away: every repair at once, then nothing left to do."""
    env, _ = _store_env(tmp_path)
    (tmp_path / "store-a").rename(tmp_path / "store-b")
    env = env.rename(tmp_path / "env2")
    first = _heal(capsys, env, "--python", tmp_path / "store-b" / "bin" / "python3.11")
    assert first.code == 0, first.out + first.err
    repaired = {o["code"] for o in first.json["outcomes"] if o["outcome"] == "repaired"}
    assert {"interpreter-dangling", "stale-shebang", "stale-activate"} <= repaired
    before = snapshot(env)

    second = _heal(capsys, env)

    assert second.code == 0, second.out + second.err
    assert (second.json["changed"], second.json["actions"], second.json["outcomes"]) == (False, [], [])
    assert snapshot(env) == before
    _assert_runs(env)


# -- package directories -------------------------------------------------------------------------


def test_prefix_package_directory_is_converted_into_a_venv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _package_dir(tmp_path, "prefix")
    site = directory / "lib" / "python3.11" / "site-packages"
    dist_infos = _dist_infos(site)
    assert dist_infos and not (directory / "pyvenv.cfg").exists()

    result = _doctor(capsys, directory)

    assert result.code == 1, result.out + result.err
    assert (result.json["kind"], result.json["packages_python"]) == ("package-dir", "3.11")
    assert ("not-a-venv", "error", ".") in _found(result)

    healed = _heal(capsys, directory)

    assert healed.code == 0, healed.out + healed.err
    assert "convert" in _actions(healed)
    assert ("not-a-venv", ".", "repaired") in _outcomes(healed)
    assert (directory / "pyvenv.cfg").is_file()
    assert _dist_infos(site) == dist_infos
    _assert_runs(directory)
    assert _assert_healthy(capsys, directory)["kind"] == "venv"


def test_flat_target_directory_is_moved_into_site_packages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _package_dir(tmp_path, "target")
    dist_infos = _dist_infos(directory)
    assert dist_infos and (directory / "tinyweb" / "__init__.py").is_file()

    result = _doctor(capsys, directory)

    assert result.code == 1, result.out + result.err
    assert result.json["kind"] == "target-dir"
    assert ("not-a-venv", "error", ".") in _found(result)

    # A flat layout does not say which minor it was installed for: the user says.
    healed = _heal(capsys, directory, "--python", "3.11")

    assert healed.code == 0, healed.out + healed.err
    site = directory / "lib" / "python3.11" / "site-packages"
    assert _dist_infos(site) == dist_infos
    assert (site / "tinyweb" / "__init__.py").is_file()
    assert not (directory / "tinyweb").exists()
    assert not list(directory.glob("*.dist-info"))
    _assert_runs(directory)
    _assert_healthy(capsys, directory)


# -- environments heal leaves alone --------------------------------------------------------------


@pytest.mark.parametrize("how", ["VIRTUAL_ENV", ".managed-by"])
def test_user_managed_environment_is_skipped_unless_forced(
    how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _moved_env(tmp_path)
    if how == "VIRTUAL_ENV":
        other = _build_env(tmp_path / "other", _python("3.11"))
        monkeypatch.setenv("VIRTUAL_ENV", str(other))
        who = str(other)
    else:
        (env / ".managed-by").write_text("platform team\n")
        who = "platform team"
    before = snapshot(env)

    result = _doctor(capsys, env)

    assert result.code == 1, result.out + result.err
    found = _found(result)
    assert {("user-managed", "note", "."), ("stale-shebang", "error", "bin/tinyweb")} <= found
    (managed,) = _findings(result, "user-managed")
    assert result.json["managed_by"]
    assert who in managed["seen"] + str(result.json["managed_by"])

    skipped = _heal(capsys, env)

    assert skipped.code == 1, skipped.out + skipped.err
    assert {o["outcome"] for o in skipped.json["outcomes"]} == {"skipped"}
    assert ("stale-shebang", "bin/tinyweb", "skipped") in _outcomes(skipped)
    assert skipped.json["changed"] is False
    assert snapshot(env) == before

    forced = _heal(capsys, env, "--force")

    assert forced.code == 0, forced.out + forced.err
    assert forced.json["forced"] is True
    assert ("stale-shebang", "bin/tinyweb", "repaired") in _outcomes(forced)
    _assert_runs(env)
    # Still someone else's (a note), but healthy.
    assert ("user-managed", "note", ".") in _found(_doctor(capsys, env))
    _assert_healthy(capsys, env)


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env, new_python = _dangling_env(tmp_path)
    before, beside = snapshot(env), sorted(os.listdir(tmp_path))

    planned = _heal(capsys, env, "--python", new_python, "--dry-run")

    assert planned.code == 1, planned.out + planned.err
    report = planned.json
    assert (report["dry_run"], report["changed"]) == (True, False)
    assert {o["outcome"] for o in report["outcomes"]} == {"would-repair"}
    assert {"interpreter-dangling", "home-missing"} <= {o["code"] for o in report["outcomes"]}
    assert "relink" in _actions(planned)
    assert all(a["path"] for a in report["actions"])
    assert snapshot(env) == before
    assert sorted(os.listdir(tmp_path)) == beside
    assert _doctor(capsys, env).code == 1


# -- what doctor cannot inspect, and smaller repairs ---------------------------------------------


@pytest.mark.parametrize("what", ["missing", "empty directory", "file"])
def test_what_is_not_an_environment_cannot_be_inspected(
    what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "srv"
    if what == "empty directory":
        path.mkdir()
    elif what == "file":
        path.write_text("not an environment\n")

    result = vk(capsys, "doctor", "--env", path)

    assert result.code == 2, result.out + result.err
    assert str(path) in result.error_line
    healed = vk(capsys, "heal", "--env", path)
    assert healed.code == 2, healed.out + healed.err
    assert str(path) in healed.error_line
    assert path.exists() == (what != "missing")
    assert not path.is_dir() or not list(path.iterdir())


def test_unparsable_pyvenv_cfg_is_rewritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _build_env(tmp_path / "env", _python("3.11"))
    cfg = env / "pyvenv.cfg"
    cfg.write_text(cfg.read_text() + "this line has no equals sign\n")

    result = _doctor(capsys, env)

    assert result.code == 1, result.out + result.err
    assert ("pyvenv-cfg-unparsable", "error", "pyvenv.cfg") in _found(result)
    (unparsable,) = _findings(result, "pyvenv-cfg-unparsable")
    assert "this line has no equals sign" in unparsable["seen"]

    healed = _heal(capsys, env)

    assert healed.code == 0, healed.out + healed.err
    assert "write-pyvenv-cfg" in _actions(healed)
    assert ("pyvenv-cfg-unparsable", "pyvenv.cfg", "repaired") in _outcomes(healed)
    assert "this line has no equals sign" not in cfg.read_text()
    assert Path(_pyvenv_cfg(env)["home"]).is_dir()
    _assert_runs(env)
    _assert_healthy(capsys, env)


def test_missing_lib64_link_is_recreated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _build_env(tmp_path / "env", _python("3.11"))
    (env / "lib64").unlink()

    result = _doctor(capsys, env)

    assert result.code == 1, result.out + result.err
    assert _found(result) == {("lib64-missing", "warning", "lib64")}

    healed = _heal(capsys, env)

    assert healed.code == 0, healed.out + healed.err
    assert _actions(healed) == {"create-lib64"}
    assert _outcomes(healed) == {("lib64-missing", "lib64", "repaired")}
    assert os.readlink(env / "lib64") == "lib"
    _assert_healthy(capsys, env)


def test_extension_built_for_another_abi_is_reported_and_left_in_place(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CPython 3.10 wheel forced into a 3.11 environment (uv's --python-version 3.10).

    The wheel is tagged for what it holds (cp310). The index has it too, so heal's reinstall at
    the same version finds the same cp310-only release: nothing can fix it, and heal says so.
    """
    extension = "fakeext/_speed.cpython-310-x86_64-linux-gnu.so"
    wheel = make_wheel(
        tmp_path / "wheels",
        "fakeext",
        "1.0.0",
        files={"fakeext/__init__.py": "", extension: b"\x7fELF not really a shared object\n" * 8},
        tag="cp310-cp310-manylinux_2_17_x86_64",
    )
    index.publish(wheel)
    env = _build_env(tmp_path / "env", _python("3.11"))
    run([find_uv(), "pip", "install", "--python", env / "bin" / "python", "--python-version", "3.10", wheel])
    path = f"{site_packages(env).relative_to(env)}/{extension}"
    before = snapshot(env)

    result = _doctor(capsys, env)

    assert result.code == 1, result.out + result.err
    assert _found(result) == {("abi-mismatch", "error", path)}

    healed = _heal(capsys, env)

    assert healed.code == 1, healed.out + healed.err
    (outcome,) = healed.json["outcomes"]
    assert (outcome["code"], outcome["path"], outcome["outcome"]) == ("abi-mismatch", path, "still-broken")
    assert outcome["reason"]
    # Whatever the reinstall replaced was put back.
    assert "fakeext-1.0.0.dist-info" in _dist_infos(site_packages(env))
    assert snapshot(env) == before
    _assert_runs(env)


# -- found in review -----------------------------------------------------------------------------


def test_an_environment_moved_to_a_path_with_a_space_gets_a_launcher_that_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A #! line cannot hold a space: heal writes the /bin/sh trampoline pip and uv write."""
    env = _build_env(tmp_path / "env", _python("3.11"))
    (tmp_path / "with space").mkdir()
    moved = env.rename(tmp_path / "with space" / "env")
    assert _found(_doctor(capsys, moved)) >= {("stale-shebang", "error", "bin/tinyweb")}
    healed = _heal(capsys, moved)
    assert healed.code == 0, healed.out
    assert (moved / "bin" / "tinyweb").read_text().startswith(f"#!/bin/sh\n'''exec' '{moved}/bin/python' ")
    _assert_runs(moved)
    _assert_healthy(capsys, moved)
    # And back out again: the trampoline itself is recognised and rewritten as a plain #! line.
    back = moved.rename(tmp_path / "env3")
    assert _found(_doctor(capsys, back)) >= {("stale-shebang", "error", "bin/tinyweb")}
    assert _heal(capsys, back).code == 0
    assert (back / "bin" / "tinyweb").read_text().startswith(f"#!{back}/bin/python\n")
    _assert_runs(back)


def test_a_healthy_uv_environment_at_a_long_path_has_no_findings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """uv writes a single-quoted trampoline for a path over 127 bytes; it names this environment."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    env = _build_env(deep / "env", _python("3.11"))
    assert (env / "bin" / "tinyweb").read_text().startswith("#!/bin/sh\n'''exec' '")
    _assert_healthy(capsys, env)


def test_converting_keeps_the_users_gitignore_and_adds_no_cache_tag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """uv venv writes .gitignore ("*") and CACHEDIR.TAG; in a user's package directory neither belongs."""
    directory = _package_dir(tmp_path, "prefix")
    (directory / ".gitignore").write_text("__pycache__/\n")
    healed = _heal(capsys, directory)
    assert healed.code == 0, healed.out
    assert (directory / ".gitignore").read_text() == "__pycache__/\n"
    assert not (directory / "CACHEDIR.TAG").exists()
    assert (directory / "pyvenv.cfg").is_file()


def test_a_venv_on_path_is_never_taken_as_the_interpreter(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """home must name an interpreter, not another environment's bin/ (which would chain venvs)."""
    env, _ = _dangling_env(tmp_path)
    other = tmp_path / "other"
    run([find_uv(), "venv", "--python", _python("3.11"), other])
    monkeypatch.setenv("PATH", f"{other / 'bin'}{os.pathsep}{os.environ['PATH']}")
    healed = _heal(capsys, env)
    assert healed.code == 0, healed.out
    home = _pyvenv_cfg(env)["home"]
    assert not (Path(home).parent / "pyvenv.cfg").exists(), home
    _assert_runs(env)


def test_a_rebuild_killed_between_its_renames_is_put_back_by_the_next_heal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The old environment renamed aside by a heal that then died: the next heal restores it first."""
    env = _build_env(tmp_path / "env", _python("3.11"))
    before = snapshot(env)
    dead = 2**22 + 12345  # above the default pid_max: no such process
    env.rename(tmp_path / f".env.heal-old-{dead}")
    healed = _heal(capsys, env)
    assert healed.code == 0, healed.out + healed.err
    assert snapshot(env) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env"]
