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
import shutil
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


def test_env_spelled_through_another_symlink_still_gets_its_own_scripts(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Generation 1 built through ``L/.venv`` (L -> real): its scripts name ``L/...``. A deploy through
    ``real/.venv`` must not leave a script that runs generation 1 (which the prune then removes)."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "L").symlink_to(real)
    assert vk(capsys, "deploy", project, "--env", tmp_path / "L" / ".venv", "--keep", "5").code == 0
    env = real / ".venv"
    _edit_member(project)

    result = vk(capsys, "deploy", project, "--env", env, "--keep", "0", "--json")

    assert result.code == 0, result.err
    assert result.json["pruned"] == [1]
    assert "/generations/0002/bin/python" in (env / "bin" / "webapp").read_text().splitlines()[0]
    assert run_in_env(env, "python", "-c", "import webapp; print(webapp.EDITED)").stdout == "edited\n"
    assert run_in_env(env, "webapp").returncode == 0
    _verify_clean(capsys, env)


def test_a_member_removed_from_the_workspace_is_uninstalled(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], uv_bin: Path
) -> None:
    extra = project / "packages" / "extra"
    (extra / "src" / "extra").mkdir(parents=True)
    (extra / "src" / "extra" / "__init__.py").write_text("X = 1\n")
    (extra / "pyproject.toml").write_text(
        (project / "packages" / "core" / "pyproject.toml")
        .read_text()
        .replace('name = "core"', 'name = "extra"')
    )
    run([uv_bin, "lock"], cwd=project)
    commit_all(project, "extra")
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env, "--keep", "5").code == 0
    assert "extra" in _record(env, 1)["packages"]
    shutil.rmtree(extra)
    run([uv_bin, "lock"], cwd=project)
    commit_all(project, "no extra")

    state = _deploy(capsys, project, env)

    assert state["built"]["from"] == "clone" and state["built"]["lock_synced"] is True
    assert "extra" not in state["packages"]
    assert not list(site_packages(env).glob("extra*"))
    _verify_clean(capsys, env)


def test_a_member_file_changed_in_place_is_not_reinstalled_from_the_poisoned_cache(
    fresh_uv_cache: Path, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env, "--keep", "5").code == 0
    target = site_packages(env) / "core" / "__init__.py"
    data, st = target.read_bytes(), target.stat()
    assert st.st_nlink > 1  # linked from uv's cache: the edit below reaches it
    with open(target, "r+b") as fh:
        fh.write(b"#" if data[:1] != b"#" else b"!")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    _edit_member(project)  # webapp changes, core does not

    built = _deploy(capsys, project, env)["built"]

    assert "core" in built["installed"]
    assert (_home(env) / "0002" / target.relative_to(env)).read_bytes() == data
    _verify_clean(capsys, env)


def test_a_hook_writing_a_live_file_before_the_prune_is_not_explained(
    fresh_uv_cache: Path, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The prune explains only the ctimes its own unlinks moved: a hook that wrote tinydb in place (mtime
    put back) before it is not, so the next clone hashes that file and refuses it."""
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env, "--keep", "5").code == 0
    (project / "tamper.py").write_text(
        "import glob, os, sys\n"
        "p = glob.glob(os.path.join(sys.prefix, 'lib/python3*/site-packages/tinydb/__init__.py'))[0]\n"
        "st = os.stat(p)\n"
        "data = open(p, 'rb').read()\n"
        "open(p, 'r+b').write(b'#' if data[:1] != b'#' else b'!')\n"
        "os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))\n"
    )
    pyproject = project / "pyproject.toml"
    plain = pyproject.read_text()
    pyproject.write_text(plain + '\n[tool.venvkeeper.hooks]\npost-deploy = ["python tamper.py"]\n')
    _edit_member(project, "hooked")
    hooked = vk(capsys, "deploy", project, "--env", env, "--keep", "0", "--json")
    assert hooked.code == 0, hooked.err
    assert hooked.json["pruned"] == [1]
    pyproject.write_text(plain)
    _edit_member(project)

    built = _deploy(capsys, project, env)["built"]

    assert any("tinydb/__init__.py" in path for path in built["refused"]), built
    assert "tinydb" in built["installed"]
    _verify_clean(capsys, env)


def test_after_a_hook_rolls_back_the_next_clone_hashes_only_the_member_uv_replaced(
    project: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The failed generation was a clone: cloning it moved the live generation's ctimes, and so did
    removing it; both were venvkeeper's own doing and are explained. Only the files of the member uv
    reinstalled there (uv unlinked those, not venvkeeper) are hashed by the next clone."""
    pyproject = project / "pyproject.toml"
    plain = pyproject.read_text()
    pyproject.write_text(plain + '\n[tool.venvkeeper.hooks]\npost-deploy = ["false"]\n')
    _edit_member(project, "failing hook")
    assert vk(capsys, "deploy", project, "--env", env, "--keep", "5").code != 0
    assert env.readlink().name == "0001"
    pyproject.write_text(plain)
    _edit_member(project)

    built = _deploy(capsys, project, env)["built"]

    webapp_files = [p for p, row in _manifest(env, 1)["files"].items() if row[3] == "webapp"]
    assert (built["from"], built["refused"]) == ("clone", {})
    assert 0 < built["hashed"] <= len(webapp_files), (built, len(webapp_files))


def test_a_path_dependency_makes_a_lock_change_build_from_nothing(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    uv_bin: Path,
    publish: Callable[..., Path],
) -> None:
    """uv's export names an editable path dependency by its path (``-e ./libs/foo``): the clone cannot
    tell what it installs, so it removes nothing on a guess and the generation is built from nothing."""
    lib = project / "libs" / "foo"
    (lib / "src" / "foo").mkdir(parents=True)
    (lib / "src" / "foo" / "__init__.py").write_text("X = 1\n")
    (lib / "pyproject.toml").write_text(
        (project / "packages" / "core" / "pyproject.toml")
        .read_text()
        .replace('name = "core"', 'name = "foo"')
    )
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('dependencies = ["webapp"]', 'dependencies = ["webapp", "foo"]')
    pyproject.write_text(text + '\n[tool.uv.sources.foo]\npath = "libs/foo"\neditable = true\n')
    run([uv_bin, "lock"], cwd=project)
    commit_all(project, "foo")
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env, "--keep", "5").code == 0
    publish("tinydb", "1.2.1")
    run([uv_bin, "lock", "--upgrade-package", "tinydb"], cwd=project)
    commit_all(project, "tinydb 1.2.1")

    state = _deploy(capsys, project, env)

    assert state["built"]["from"] == "nothing"
    assert "names a dependency by path" in state["built"]["why"]
    assert state["packages"]["foo"] == "0.1.0" and state["packages"]["tinydb"] == "1.2.1"
    _verify_clean(capsys, env)
