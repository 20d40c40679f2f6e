"""Incremental generations (issue 14): a new generation is a hard-link clone of the live one, and only
the delta is installed. What a user sees: the record says how it was built, the new generation verifies
clean and runs, the live one is never written, and nothing changed since the seal is carried forward.

Tampers write a new file and rename it over the old one, or write in place on a file of this test's
own uv cache (``fresh_uv_cache``): uv hard-links installed files to its cache.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.process import run
from vk import commit_all, generations, run_in_env, site_packages, snapshot, vk


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("workspace")


@pytest.fixture
def env(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The workspace project deployed to ``tmp_path/srv/.venv`` (generation 1, built from nothing)."""
    env = tmp_path / "srv" / ".venv"
    result = vk(capsys, "deploy", project, "--env", env, "--keep", "5")
    assert result.code == 0, result.err
    assert _record(env, 1)["built"]["from"] == "nothing"
    return env


def _home(env: Path) -> Path:
    return env.parent / f"{env.name}.venvkeeper" / "generations"


def _record(env: Path, number: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_home(env) / f"{number:04d}.json").read_text())
    return data


def _manifest(env: Path, number: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_home(env) / f"{number:04d}.manifest.json").read_text())
    return data


def _edit_member(project: Path, text: str = "edited") -> None:
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + f"\nEDITED = {text!r}\n")
    commit_all(project)


def _deploy(capsys: pytest.CaptureFixture[str], project: Path, env: Path) -> dict[str, Any]:
    result = vk(capsys, "deploy", project, "--env", env, "--keep", "5", "--json")
    assert result.code == 0, result.err
    assert result.json["changed"] is True
    return _record(env, int(result.json["generation"]))


def _verify_clean(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    result = vk(capsys, "verify", "--env", env, "--json")
    assert result.code == 0, result.out
    assert result.json["findings"] == []


def _replace(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o777
    scratch = path.with_name(f".{path.name}.tamper")
    scratch.write_bytes(data)
    scratch.chmod(mode)
    os.replace(scratch, path)


def test_a_member_edit_clones_the_live_generation_and_installs_only_that_member(
    project: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _home(env) / "0001"
    before = snapshot(first)
    _edit_member(project)

    built = _deploy(capsys, project, env)["built"]

    assert built["from"] == "clone" and built["source"] == 1
    assert built["installed"] == ["webapp"]
    assert built["refused"] == {} and built["lock_synced"] is False
    second = _home(env) / "0002"
    site = site_packages(env).relative_to(env)
    tinydb = next(p for p in (first / site).rglob("*.py") if "tinydb" in str(p))
    rel = tinydb.relative_to(first)
    assert (second / rel).stat().st_ino == tinydb.stat().st_ino  # unchanged: linked, not installed
    webapp = site / "webapp" / "__init__.py"
    assert (second / webapp).stat().st_ino != (first / webapp).stat().st_ino
    assert "EDITED" in (second / webapp).read_text() and "EDITED" not in (first / webapp).read_text()
    # The scripts name the new generation, and the old one is byte for byte what it was.
    assert str(second) in (second / "bin" / "webapp").read_text()
    assert str(first) not in "".join(p.read_text(errors="replace") for p in (second / "bin").iterdir())
    assert snapshot(first) == before
    assert run_in_env(env, "webapp").returncode == 0
    _verify_clean(capsys, env)
    # The member's bytecode was compiled and sealed before the switch; the manifest records identities.
    manifest = _manifest(env, 2)
    assert manifest["schema"] == 2
    assert any("/webapp/__pycache__/" in p for p in manifest["bytecode"])
    for path in manifest["bytecode"]:
        assert (second / path).is_file()


def test_generations_stay_independent_when_one_is_removed(
    project: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pruning generation 1 (every later one shares most of its inodes) changes no byte of the others."""
    _edit_member(project)
    _deploy(capsys, project, env)
    second = snapshot(_home(env) / "0002")

    _edit_member(project, "again")
    assert vk(capsys, "deploy", project, "--env", env, "--keep", "1").code == 0

    assert generations(env) == ["0002", "0002.json", "0003", "0003.json"]
    assert snapshot(_home(env) / "0002") == second
    assert run_in_env(env, "webapp").returncode == 0
    _verify_clean(capsys, env)
    # Removing generation 1 moved the ctime of every inode it shared with 3; venvkeeper saw that its
    # own unlink did it (generations.identity), so the next clone links without hashing.
    _edit_member(project, "once more")
    assert vk(capsys, "deploy", project, "--env", env, "--keep", "1").code == 0
    built = _record(env, 4)["built"]
    assert (built["from"], built["source"], built["hashed"], built["refused"]) == ("clone", 3, 0, {})
    assert vk(capsys, "rollback", "--env", env).code == 0
    _verify_clean(capsys, env)  # generation 3, live again


def test_a_file_changed_in_place_with_its_mtime_restored_is_not_carried_forward(
    fresh_uv_cache: Path, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same size, mtime put back: only the ctime (or the hash) tells. The file is not linked; its
    distribution is installed afresh (uv's cache entry dropped first: the edit went through it).
    Deployed here, after ``fresh_uv_cache``: the in-place write reaches the cache it was linked from."""
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env, "--keep", "5").code == 0
    first = _home(env) / "0001"
    target = next(p for p in site_packages(env).rglob("*.py") if "tinydb" in str(p) and p.stat().st_size > 10)
    data = target.read_bytes()
    st = target.stat()
    with open(target, "r+b") as fh:  # in place: the same inode, shared with this test's own cache
        fh.write(b"#" if data[:1] != b"#" else b"!")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    tampered = target.read_bytes()
    _edit_member(project)

    built = _deploy(capsys, project, env)["built"]

    rel = str(target.relative_to(site_packages(env).parent.parent.parent))
    assert built["from"] == "clone"
    assert rel in built["refused"], built["refused"]
    assert "tinydb" in built["installed"]
    assert (_home(env) / "0002" / rel).read_bytes() == data != tampered
    assert (first / rel).read_bytes() == tampered  # the live generation itself is left to verify/repair
    _verify_clean(capsys, env)


def test_tampered_and_unsealed_bytecode_is_not_carried_forward(
    project: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _home(env) / "0001"
    sealed = _manifest(env, 1)["bytecode"]
    tinydb_pyc = next(p for p in sealed if "tinydb" in p)
    _replace(first / tinydb_pyc, b"planted bytecode")
    planted = Path(tinydb_pyc).parent / "planted.cpython-311.pyc"
    (first / planted).write_bytes(b"written at run time, never sealed")
    _edit_member(project)

    built = _deploy(capsys, project, env)["built"]

    second = _home(env) / "0002"
    assert built["from"] == "clone"
    assert not (second / planted).exists()
    # The smoke check's import compiled tinydb again, from its sealed source, and that is sealed.
    fresh = (second / tinydb_pyc).read_bytes()
    assert fresh != b"planted bytecode"
    assert _manifest(env, 2)["bytecode"][tinydb_pyc][1] == hashlib.sha256(fresh).hexdigest()
    assert (second / tinydb_pyc).stat().st_ino != (first / tinydb_pyc).stat().st_ino
    assert run_in_env(env, "webapp").returncode == 0


def test_a_changed_venv_file_refuses_the_clone_and_builds_from_nothing(
    project: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _home(env) / "0001" / "pyvenv.cfg"
    _replace(cfg, cfg.read_bytes() + b"# edited\n")
    _edit_member(project)

    built = _deploy(capsys, project, env)["built"]

    assert built["from"] == "nothing"
    assert "pyvenv.cfg: changed since it was sealed" in built["why"]
    assert b"# edited" not in (_home(env) / "0002" / "pyvenv.cfg").read_bytes()
    _verify_clean(capsys, env)


def test_a_manifest_that_does_not_match_its_record_is_not_cloned(
    project: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _home(env) / "0001.manifest.json"
    path.write_text(path.read_text().replace('"schema":2', '"schema":2 '))
    _edit_member(project)

    built = _deploy(capsys, project, env)["built"]

    assert built["from"] == "nothing"
    assert "does not match the sha256 in its generation record" in built["why"]


def test_a_bumped_package_is_synced_into_the_clone(
    project: Path,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
    uv_bin: Path,
) -> None:
    publish("tinydb", "1.2.1")
    run([uv_bin, "lock", "--upgrade-package", "tinydb"], cwd=project)
    commit_all(project, "tinydb 1.2.1")

    state = _deploy(capsys, project, env)

    assert state["built"]["from"] == "clone" and state["built"]["lock_synced"] is True
    assert state["packages"]["tinydb"] == "1.2.1"
    assert state["built"]["installed"] == []  # no member changed
    assert run_in_env(env, "webapp").returncode == 0
    _verify_clean(capsys, env)
    assert vk(capsys, "deploy", project, "--env", env, "--json").json["changed"] is False


def test_a_refused_hard_link_builds_from_nothing(
    project: Path, env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another filesystem, fs.protected_hardlinks, a link limit: the deploy still works, from nothing."""

    def cross_device(src: str, dst: str, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src)

    monkeypatch.setattr(os, "link", cross_device)
    _edit_member(project)

    state = _deploy(capsys, project, env)

    assert state["built"]["from"] == "nothing"
    assert "Invalid cross-device link" in state["built"]["why"]
    assert run_in_env(env, "webapp").returncode == 0
    _verify_clean(capsys, env)


def test_a_generation_sealed_before_identities_is_verified_and_not_cloned(
    project: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A generation from before schema 2 (no inode, mtime, ctime, bytecode): verify still reads its
    manifest, and the next deploy builds from nothing, saying why."""
    manifest = _manifest(env, 1)
    old = {
        "schema": 1,
        "files": {p: row[:4] for p, row in manifest["files"].items()},
        "links": manifest["links"],
        "distributions": manifest["distributions"],
        "sources": manifest["sources"],
    }
    raw = json.dumps(old).encode()
    (_home(env) / "0001.manifest.json").write_bytes(raw)
    state_path = _home(env) / "0001.json"
    state = json.loads(state_path.read_text())
    state["manifest_sha256"] = hashlib.sha256(raw).hexdigest()
    state_path.write_text(json.dumps(state))
    _verify_clean(capsys, env)
    _edit_member(project)

    built = _deploy(capsys, project, env)["built"]

    assert built["from"] == "nothing"
    assert "schema 1" in built["why"]
    _verify_clean(capsys, env)
