"""``venvkeeper pack`` and ``install``: a deterministic bundle, installed with the index down, into a
generation like deploy's; signatures, targets and damaged bundles refused before anything is written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support.index import LocalIndex
from vk import commit_all, generations, run_in_env, vk


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("single")


def _pack(
    capsys: pytest.CaptureFixture[str], project: Path, out: Path, *args: str | Path
) -> dict[str, object]:
    result = vk(capsys, "pack", project, "-o", out, "--json", *args)
    assert result.code == 0, result.err
    return result.json


def test_the_same_inputs_pack_to_the_same_bytes(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _pack(capsys, project, tmp_path / "a.tar.gz")
    second = _pack(capsys, project, tmp_path / "b.tar.gz")

    assert first["sha256"] == second["sha256"]
    assert hashlib.sha256((tmp_path / "a.tar.gz").read_bytes()).hexdigest() == first["sha256"]
    assert first["members"] == ["single-0.1.0-py3-none-any.whl"]
    assert first["wheels"] == 2  # tinyutil and the member


def test_install_needs_no_network_and_twice_is_unchanged(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], index: LocalIndex
) -> None:
    bundle = tmp_path / "app.tar.gz"
    _pack(capsys, project, bundle)
    env = tmp_path / "srv" / ".venv"
    index.stop()

    first = vk(capsys, "install", bundle, "--env", env, "--json")
    again = vk(capsys, "install", bundle, "--env", env, "--json")

    assert first.code == 0, first.err
    assert (first.json["changed"], first.json["generation"]) == (True, 1)
    assert (again.json["changed"], again.json["generation"]) == (False, 1)
    assert generations(env) == ["0001", "0001.json"]
    assert run_in_env(env, "single").stdout.strip() == "single 0.1.0 (tinyutil 1.1.0)"
    verified = vk(capsys, "verify", "--env", env, "--json")
    assert verified.code == 0, verified.out
    assert verified.json["kind"] == "generation"


def test_a_signed_bundle_needs_the_right_key(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert vk(capsys, "keygen", tmp_path / "release").code == 0
    assert vk(capsys, "keygen", tmp_path / "other").code == 0
    assert (tmp_path / "release").stat().st_mode & 0o777 == 0o600
    bundle = tmp_path / "app.tar.gz"
    assert _pack(capsys, project, bundle, "--sign", tmp_path / "release")["signed"] is True
    env = tmp_path / "srv" / ".venv"

    unkeyed = vk(capsys, "install", bundle, "--env", env)
    wrong = vk(capsys, "install", bundle, "--env", env, "--public-key", tmp_path / "other.pub")
    right = vk(capsys, "install", bundle, "--env", env, "--public-key", tmp_path / "release.pub")

    assert unkeyed.code == wrong.code == 2
    assert "pass --public-key to check its signature" in unkeyed.error_line
    assert "the signature does not verify with the public key" in wrong.error_line
    assert right.code == 0, right.err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--python", "3.10"), "the bundle is for cp310"),
        (("--platform", "win_amd64"), "win_amd64"),
    ],
)
def test_a_bundle_for_another_target_is_refused_naming_both(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], named: str
) -> None:
    bundle = tmp_path / "app.tar.gz"
    _pack(capsys, project, bundle, *args)
    env = tmp_path / "srv" / ".venv"

    result = vk(capsys, "install", bundle, "--env", env, "--python", sys.executable)

    assert result.code == 2, result.out + result.err
    assert named in result.error_line
    assert f"cp3{sys.version_info[1]}" in result.error_line  # this interpreter's tags, too
    assert not env.exists() and not (env.parent / ".venv.venvkeeper").exists()


def test_a_damaged_bundle_is_refused_before_anything_is_written(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "app.tar.gz"
    _pack(capsys, project, bundle)
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    env = tmp_path / "srv" / ".venv"

    result = vk(capsys, "install", bundle, "--env", env)

    assert result.code == 2
    assert str(bundle) in result.error_line
    assert not env.parent.exists()


def test_in_place_converges_the_directory_itself(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], index: LocalIndex
) -> None:
    bundle = tmp_path / "app.tar.gz"
    _pack(capsys, project, bundle)
    env = tmp_path / "image" / "venv"
    index.stop()

    first = vk(capsys, "install", bundle, "--env", env, "--in-place", "--json")
    again = vk(capsys, "install", bundle, "--env", env, "--in-place", "--json")

    assert first.code == 0, first.err
    assert (first.json["changed"], first.json["in_place"]) == (True, True)
    assert again.json["changed"] is False
    assert env.is_dir() and not env.is_symlink()
    assert run_in_env(env, "single").returncode == 0
    verified = vk(capsys, "verify", "--env", env, "--json")
    assert verified.code == 0, verified.out
    assert verified.json["kind"] == "in-place"


def test_an_executable_runs_its_script_with_only_python_and_no_network(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], index: LocalIndex
) -> None:
    app = tmp_path / "single-app"
    packed = _pack(capsys, project, app, "--executable")
    index.stop()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    first = subprocess.run(
        [str(app), "--x"], capture_output=True, text=True, env=env, check=False, timeout=120
    )

    assert packed["executable"] is True and packed["with_uv"] is True
    assert app.read_bytes().startswith(b"#!")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "single 0.1.0 (tinyutil 1.1.0)"


def test_the_bundles_hooks_run_only_in_a_checkout_named_for_them(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.venvkeeper.hooks]\npost-deploy = ["touch hook-ran"]\n'
    )
    commit_all(project, "a hook")
    bundle = tmp_path / "app.tar.gz"
    _pack(capsys, project, bundle)
    checkout = tmp_path / "checkout"
    checkout.mkdir()

    without = vk(capsys, "install", bundle, "--env", tmp_path / "a" / ".venv", "--json")
    with_dir = vk(
        capsys, "install", bundle, "--env", tmp_path / "b" / ".venv", "--hooks-dir", checkout, "--json"
    )

    assert without.code == with_dir.code == 0, without.err + with_dir.err
    assert "1 post-deploy hook(s) did not run" in without.json["reason"]
    assert not (Path.cwd() / "hook-ran").exists()
    assert (checkout / "hook-ran").is_file()
    assert [h["command"] for h in with_dir.json["hooks"]] == ["touch hook-ran"]


def test_a_manifest_with_fields_pack_never_writes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from venvkeeper.bundle.archive import FORMAT_VERSION
    from venvkeeper.bundle.writer import describe, write_bundle

    files: dict[str, bytes | Path] = {
        "pylock.toml": b'lock-version = "1.0"\ncreated-by = "x"\npackages = []\n'
    }
    manifest = {
        "format": "venvkeeper-bundle",
        "format_version": FORMAT_VERSION,
        "target": {"python": f"{sys.version_info[0]}.{sys.version_info[1]}", "platforms": []},
        "members": ["../../evil.whl"],
        "files": describe(files),
    }
    bundle = tmp_path / "odd.tar.gz"
    with bundle.open("wb") as out:
        write_bundle(out, files, manifest, mtime=0)
    env = tmp_path / "srv" / ".venv"

    result = vk(capsys, "install", bundle, "--env", env)

    assert result.code == 2
    assert "manifest.json: members[0]: '../../evil.whl' is not a file in the bundle's wheels/" in (
        result.error_line
    )
    assert not env.parent.exists()
