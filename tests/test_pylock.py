"""A PEP 751 lock alone (a requirements.txt resolved into a pylock.toml, no pyproject.toml, no uv.lock):
``deploy --lock``, ``install pylock.toml``, ``verify --lock`` and ``audit pylock.toml``.

The locks are real: one written by uv (``uv pip compile --format pylock.toml``) against the local
index, and one written by hand per PEP 751 with ``path`` wheels beside it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from packageurl import PackageURL

from support.index import LocalIndex
from support.packages import fake_wheel
from support.process import run
from support.pythons import install_store_python, real_python
from venvkeeper.deploy.pylockdeploy import sbom_entries
from venvkeeper.project.pylock import LockedWheel
from vk import run_in_env, snapshot, vk

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _uv_lock(directory: Path, uv_bin: Path, requirements: str, *extra: str) -> Path:
    """``uv pip compile requirements.txt --format pylock.toml``, as a user runs it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "requirements.txt").write_text(requirements)
    lock = directory / "pylock.toml"
    run(
        [
            uv_bin,
            "pip",
            "compile",
            "--quiet",
            "--python-version",
            PYTHON,
            "requirements.txt",
            "--format",
            "pylock.toml",
            "-o",
            lock.name,
            *extra,
        ],
        cwd=directory,
    )
    return lock


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hand_lock(directory: Path, wheels: dict[str, tuple[str, Path]], *, header: str = "") -> Path:
    """A pylock.toml written by hand per PEP 751: each wheel by its relative ``path``."""
    lines = ['lock-version = "1.0"', 'created-by = "hand"', 'requires-python = ">=3.10"', header, ""]
    for name, (version, wheel) in sorted(wheels.items()):
        lines += [
            "[[packages]]",
            f'name = "{name}"',
            f'version = "{version}"',
            f'wheels = [{{ name = "{wheel.name}", path = "./{os.path.relpath(wheel, directory)}", '
            f'hashes = {{ sha256 = "{_sha(wheel)}" }} }}]',
            "",
        ]
    lock = directory / "pylock.toml"
    lock.write_text("\n".join(lines))
    return lock


@pytest.fixture
def hand_lock(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "wheels").mkdir(parents=True)
    util = fake_wheel(project / "wheels", "tinyutil", "1.1.0")
    web = fake_wheel(project / "wheels", "tinyweb", "1.0.0")
    return _hand_lock(project, {"tinyutil": ("1.1.0", util), "tinyweb": ("1.0.0", web)})


def test_a_uv_written_lock_deploys_verifies_and_rolls_back(
    tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _uv_lock(tmp_path / "project", uv_bin, "tinyweb\n")
    assert not (lock.parent / "pyproject.toml").exists()
    assert {p["name"] for p in tomllib.loads(lock.read_text())["packages"]} == {"tinyutil", "tinyweb"}
    env = tmp_path / "env"
    first = vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", PYTHON, "--json")
    assert first.code == 0, first.err
    assert first.json["generation"] == 1 and first.json["changed"] is True
    assert [p["name"] for p in first.json["added"]] == ["tinyutil", "tinyweb"]
    assert run_in_env(env, "tinyweb").stdout.strip() == "tinyweb 1.0.0"
    again = vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", PYTHON, "--json")
    assert again.code == 0 and again.json["changed"] is False and again.json["generation"] == 1

    clean = vk(capsys, "verify", "--env", env, "--lock", lock, "--json")
    assert clean.code == 0, clean.out + clean.err
    assert {c["check"]: c["status"] for c in clean.json["checks"]}["wheels"] == "ok"
    # The plain verify works too: the generation was sealed.
    assert vk(capsys, "verify", "--env", env).code == 0

    # A new lock (tinyutil pinned back) is generation 2; rollback returns to 1.
    older = _uv_lock(tmp_path / "older", uv_bin, "tinyweb\ntinyutil==1.0.0\n")
    second = vk(capsys, "deploy", "--lock", older, "--env", env, "--python", PYTHON, "--json")
    assert second.code == 0, second.err
    assert second.json["generation"] == 2
    assert vk(capsys, "verify", "--env", env, "--lock", lock).code == 1  # drift against the first lock
    assert vk(capsys, "rollback", "--env", env).code == 0
    assert vk(capsys, "verify", "--env", env, "--lock", lock).code == 0


def test_check_says_what_would_change_and_writes_nothing(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    would = vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON, "--check", "--json")
    assert would.code == 6, would.err  # ExitCode.WOULD_CHANGE
    assert [p["name"] for p in would.json["added"]] == ["tinyutil", "tinyweb"]
    assert not env.exists() and not (tmp_path / ".env.venvkeeper").exists()
    assert vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON).code == 0
    same = vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON, "--check", "--json")
    assert same.code == 0 and same.json["changed"] is False


def test_a_failing_hook_rolls_back(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    ok = vk(
        capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON, "--hook", "tinyweb > ran.txt"
    )
    assert ok.code == 0, ok.err
    assert (hand_lock.parent / "ran.txt").read_text().strip() == "tinyweb 1.0.0"
    other = hand_lock.parent / "other"
    other.mkdir()
    util = fake_wheel(other, "tinyutil", "1.0.0")
    web = fake_wheel(other, "tinyweb", "1.0.0")
    second = _hand_lock(other, {"tinyutil": ("1.0.0", util), "tinyweb": ("1.0.0", web)})
    # In --hooks-dir, not the lock's directory; a failing hook switches back to generation 1.
    hooks_dir = tmp_path / "checkout"
    hooks_dir.mkdir()
    hooks = (
        "--hooks-dir",
        hooks_dir,
        "--hook",
        "python -c 'import tinyutil; print(tinyutil.__version__)' > ran.txt",
        "--hook",
        "exit 7",
    )
    failed = vk(capsys, "deploy", "--lock", second, "--env", env, "--python", PYTHON, *hooks)
    assert failed.code == 4, failed.err
    assert "switched back to generation 1" in failed.error_line
    assert (hooks_dir / "ran.txt").read_text().strip() == "1.0.0"  # it ran in the new generation
    assert vk(capsys, "status", "--env", env, "--json").json["current"] == 1
    assert vk(capsys, "verify", "--env", env, "--lock", hand_lock).code == 0
    # --no-hooks: the same lock goes live, no hook runs.
    (hooks_dir / "ran.txt").unlink()
    quiet = vk(capsys, "deploy", "--lock", second, "--env", env, "--python", PYTHON, *hooks, "--no-hooks")
    assert quiet.code == 0, quiet.err
    assert not (hooks_dir / "ran.txt").exists()


def test_a_wheel_that_is_not_the_locked_one_is_refused_in_one_line(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = next((hand_lock.parent / "wheels").glob("tinyutil-*.whl"))
    fake_wheel(tmp_path, "tinyutil", "1.0.0").replace(wheel)  # same name, other bytes
    env = tmp_path / "env"
    refused = vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON)
    assert refused.code == 2
    line = refused.error_line
    assert str(wheel) in line and "the lock says" in line and "tinyutil" in line
    assert not env.exists() and not os.path.lexists(env)


@pytest.mark.parametrize(
    ("header", "supported"),
    [
        ("environments = [\"sys_platform == 'win32'\"]", 'sys_platform == "win32"'),
        ('requires-python = ">=3.99"', "requires-python >=3.99"),
    ],
)
def test_a_lock_not_covering_this_interpreter_is_one_line_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str, supported: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    util = fake_wheel(project, "tinyutil", "1.1.0")
    lock = _hand_lock(project, {"tinyutil": ("1.1.0", util)}, header=header)
    if header.startswith("requires-python"):
        lock.write_text(lock.read_text().replace('requires-python = ">=3.10"\n', "", 1))
    refused = vk(capsys, "deploy", "--lock", lock, "--env", tmp_path / "env", "--python", PYTHON)
    assert refused.code == 2
    line = refused.error_line
    assert str(lock) in line and f"cpython {PYTHON}." in line and "on linux" in line and supported in line
    verified = vk(capsys, "verify", "--env", tmp_path / "env", "--lock", lock)
    assert verified.code == 2


def test_verify_lock_finds_a_file_whose_record_was_edited_to_match(
    tmp_path: Path, hand_lock: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain venv (a container's: no sealed manifest), the lock's wheels installed by uv: a file
    edited with its RECORD row edited to match is found only against the locked wheel."""
    env = tmp_path / "env"
    run([uv_bin, "venv", "--quiet", "--python", sys.executable, env])
    wheels = sorted(str(w) for w in (hand_lock.parent / "wheels").glob("*.whl"))
    run([uv_bin, "pip", "install", "--quiet", "--python", env / "bin" / "python", *wheels])
    assert vk(capsys, "verify", "--env", env, "--lock", hand_lock).code == 0
    (module,) = env.resolve().glob("lib/python*/site-packages/tinyutil/__init__.py")
    (record,) = env.resolve().glob("lib/python*/site-packages/tinyutil-*.dist-info/RECORD")
    tampered = b"print('not the locked code')\n"
    digest = base64.urlsafe_b64encode(hashlib.sha256(tampered).digest()).rstrip(b"=").decode()
    rows = [
        f"tinyutil/__init__.py,sha256={digest},{len(tampered)}"
        if row.startswith("tinyutil/__init__.py,")
        else row
        for row in record.read_text().splitlines()
    ]
    for path, data in ((module, tampered), (record, ("\n".join(rows) + "\n").encode())):
        path.unlink()  # never in place: a hard link may share uv's cache
        path.write_bytes(data)
    found = vk(capsys, "verify", "--env", env, "--lock", hand_lock, "--json")
    assert found.code == 1
    assert [(f["category"], f["distribution"], f["reference"]) for f in found.json["findings"]] == [
        ("modified", "tinyutil", "wheel tinyutil-1.1.0-py3-none-any.whl")
    ]
    # Without the wheels (the RECORD only), the edit is invisible: what --lock adds.
    assert vk(capsys, "verify", "--env", env, "--lock", hand_lock, "--fast").code == 0


def test_install_and_audit_take_a_pylock(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    installed = vk(capsys, "install", hand_lock, "--env", env, "--python", PYTHON, "--json")
    assert installed.code == 0, installed.err
    assert installed.json["command"] == "install" and installed.json["generation"] == 1
    again = vk(capsys, "install", hand_lock, "--env", env, "--python", PYTHON, "--check", "--json")
    assert again.code == 0 and again.json["changed"] is False
    osv = tmp_path / "osv.zip"
    with zipfile.ZipFile(osv, "w") as archive:
        archive.writestr(
            "GHSA-test.json",
            '{"id": "GHSA-test", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": '
            '{"ecosystem": "PyPI", "name": "tinyutil"}, "versions": ["1.1.0"]}]}',
        )
    audited = vk(capsys, "audit", hand_lock, "--osv", osv, "--json")
    assert audited.code == 1, audited.out + audited.err
    assert "GHSA-test" in audited.out


def test_group_selects_a_pep_751_dependency_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    util, db = fake_wheel(project, "tinyutil", "1.1.0"), fake_wheel(project, "tinydb", "1.2.0")
    lock = _hand_lock(
        project,
        {"tinyutil": ("1.1.0", util), "tinydb": ("1.2.0", db)},
        header='dependency-groups = ["dev"]\ndefault-groups = []',
    )
    text = lock.read_text().replace(
        'name = "tinydb"\n', 'name = "tinydb"\nmarker = "\'dev\' in dependency_groups"\n'
    )
    lock.write_text(text)
    env = tmp_path / "env"
    plain = vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", PYTHON, "--json")
    assert [p["name"] for p in plain.json["added"]] == ["tinyutil"], plain.err
    dev = vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", PYTHON, "--group", "dev", "--json")
    assert dev.code == 0, dev.err
    assert [p["name"] for p in dev.json["added"]] == ["tinydb"]


def test_a_uv_export_lock_deploys_and_verifies(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``uv export --format pylock.toml`` (what ``venvkeeper export`` runs) writes a lock deploy takes."""
    project = make_project("workspace")
    lock = tmp_path / "exported" / "pylock.toml"
    lock.parent.mkdir()
    assert vk(capsys, "export", project, "--format", "pylock", "-o", lock).code == 0
    assert tomllib.loads(lock.read_text())["created-by"] == "uv"
    env = tmp_path / "env"
    deployed = vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", PYTHON, "--json")
    assert deployed.code == 0, deployed.err
    assert sorted(p["name"] for p in deployed.json["added"]) == ["tinydb", "tinyutil", "tinyweb"]
    assert vk(capsys, "verify", "--env", env, "--lock", lock).code == 0


def test_a_directory_with_only_a_pylock_points_at_lock(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    assert vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON).code == 0
    refused = vk(capsys, "verify", "--env", env, "--project", hand_lock.parent)
    assert refused.code == 2
    assert "pyproject.toml: not found, but pylock.toml is there" in refused.error_line
    assert f"--lock {hand_lock}" in refused.err
    in_place = vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--in-place")
    assert in_place.code == 2 and "--in-place does not apply to --lock" in in_place.err


def test_a_uv_written_lock_whose_hash_was_edited_is_refused_in_one_line(
    tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _uv_lock(tmp_path / "project", uv_bin, "tinyweb\n")
    raw = tomllib.loads(lock.read_text())
    (web,) = [p for p in raw["packages"] if p["name"] == "tinyweb"]
    real = web["wheels"][0]["hashes"]["sha256"]
    lock.write_text(lock.read_text().replace(real, "0" * 64))
    env = tmp_path / "env"
    refused = vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", PYTHON)
    assert refused.code != 0
    assert "tinyweb" in refused.error_line and "0" * 64 in refused.err
    assert not os.path.lexists(env)


def test_a_package_locked_without_a_wheel_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    lock = project / "pylock.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n\n[[packages]]\nname = "tinyutil"\nversion = "1.0.0"\n'
        'sdist = { url = "https://example.invalid/tinyutil-1.0.0.tar.gz", hashes = { sha256 = "'
        + "a" * 64
        + '" } }\n'
    )
    refused = vk(capsys, "deploy", "--lock", lock, "--env", tmp_path / "env", "--python", PYTHON)
    assert refused.code == 2
    assert f"{lock}: tinyutil: locked as a sdist" in refused.error_line


def test_no_network_once_the_locked_wheels_are_cached(
    tmp_path: Path, uv_bin: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _uv_lock(tmp_path / "project", uv_bin, "tinyweb\n")
    assert vk(capsys, "deploy", "--lock", lock, "--env", tmp_path / "first", "--python", PYTHON).code == 0
    index.stop()  # the lock's URLs now refuse every connection
    second = vk(capsys, "deploy", "--lock", lock, "--env", tmp_path / "second", "--python", PYTHON)
    assert second.code == 0, second.err
    assert vk(capsys, "verify", "--env", tmp_path / "second", "--lock", lock).code == 0


def test_verify_lock_cannot_verify_when_a_locked_wheel_is_unreachable(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    assert vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON).code == 0
    (wheel,) = (hand_lock.parent / "wheels").glob("tinyweb-*.whl")
    wheel.unlink()
    cannot = vk(capsys, "verify", "--env", env, "--lock", hand_lock)
    assert cannot.code == 2  # not 1: nothing was found wrong, the proof could not be made
    assert "tinyweb" in cannot.error_line and str(wheel) in cannot.error_line


def test_heal_never_edits_a_pylock_generation_and_names_deploy_lock(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = real_python(PYTHON)
    if source is None:
        pytest.skip(f"CPython {PYTHON} not found under pyenv or on PATH")
    store, env = tmp_path / "store-a", tmp_path / "srv" / ".venv"
    python = install_store_python(store, source)
    assert vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", python).code == 0
    store.rename(tmp_path / "collected")  # the interpreter is gone, as after a Nix GC
    live = env.resolve()
    before = snapshot(live)

    heal = vk(capsys, "heal", "--env", env, "--json")

    assert heal.code == 1, heal.out + heal.err
    assert snapshot(live) == before
    assert env.resolve() == live
    reasons = " ".join(o.get("reason") or "" for o in heal.json["outcomes"])
    assert f"venvkeeper deploy --lock {hand_lock.resolve()} --env {env}" in reasons, heal.out


def test_repair_with_lock_rebuilds_a_damaged_generation(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    assert vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON).code == 0
    (module,) = (env / "lib").glob("python*/site-packages/tinyutil/__init__.py")
    module.write_text(module.read_text() + "\nTAMPERED = True\n")
    assert vk(capsys, "verify", "--env", env).code == 1
    same = vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON, "--json")
    assert same.code == 0 and same.json["changed"] is False  # the inputs match: only --repair looks
    key = tmp_path / "key"
    assert vk(capsys, "keygen", key).code == 0
    refused = vk(capsys, "receipt", "--env", env, "--key", key)
    assert refused.code != 0 and f"venvkeeper deploy --lock {hand_lock.resolve()} --repair" in refused.err

    repaired = vk(
        capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON, "--repair", "--json"
    )

    assert repaired.code == 0, repaired.err
    assert repaired.json["changed"] is True and repaired.json["generation"] == 2
    assert vk(capsys, "verify", "--env", env).code == 0
    again = vk(capsys, "deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON, "--repair", "--json")
    assert again.code == 0 and again.json["changed"] is False and again.json["generation"] == 2


def test_check_repair_says_a_damaged_generation_would_be_rebuilt_and_writes_nothing(
    tmp_path: Path, hand_lock: Path, fresh_uv_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    deploy = ("deploy", "--lock", hand_lock, "--env", env, "--python", PYTHON)
    assert vk(capsys, *deploy).code == 0
    intact = vk(capsys, *deploy, "--check", "--repair", "--json")
    assert intact.code == 0, intact.out + intact.err
    assert (intact.json["changed"], intact.json["repair_findings"]) == (False, 0)
    assert (
        intact.json["reason"] == "verify found nothing to repair; pylock.toml is already the live generation"
    )
    (module,) = env.resolve().glob("lib/python*/site-packages/tinyutil/__init__.py")
    assert module.stat().st_nlink > 1  # uv linked it from its cache: an edit in place damages both
    with module.open("a") as fh:
        fh.write("TAMPERED = True\n")
    relative = module.relative_to(env.resolve())
    before, cache = snapshot(tmp_path), snapshot(fresh_uv_cache)

    text = vk(capsys, *deploy, "--check", "--repair")
    found = vk(capsys, *deploy, "--check", "--repair", "--json")

    assert text.code == 6, text.out + text.err  # ExitCode.WOULD_CHANGE
    assert (
        f"would change: verify found 1 finding in the live environment: modified {relative}; "
        "a new generation would be built from pylock.toml" in text.out
    )
    assert "  would repair 1 verify finding (distributions: tinyutil)\n" in text.out
    assert "  uv's cache would be refreshed for: tinyutil\n" in text.out
    assert found.code == 6 and found.json["check"] is True
    assert (found.json["changed"], found.json["generation"], found.json["repair_findings"]) == (True, 1, 1)
    assert (found.json["repaired"], found.json["cache_refreshed"]) == (["tinyutil"], ["tinyutil"])
    assert f"modified {relative}" in found.json["reason"]
    # Nothing written: not the generation, its state directory, nor uv's cache entry it would drop.
    assert snapshot(tmp_path) == before and snapshot(fresh_uv_cache) == cache
    assert "TAMPERED" in module.read_text()
    # Without --repair nothing looks inside: the lock and interpreter are the live ones.
    assert vk(capsys, *deploy, "--check").code == 0

    repaired = vk(capsys, *deploy, "--repair", "--json")

    assert repaired.code == 0, repaired.err
    assert (repaired.json["generation"], repaired.json["repair_findings"]) == (2, 1)
    assert repaired.json["repaired"] == ["tinyutil"] and repaired.json["cache_refreshed"] == ["tinyutil"]
    assert vk(capsys, "verify", "--env", env, "--lock", hand_lock).code == 0
    assert (
        "TAMPERED"
        not in run_in_env(
            env, "python", "-c", "import tinyutil, inspect; print(inspect.getsource(tinyutil))"
        ).stdout
    )
    assert vk(capsys, *deploy, "--check", "--repair").code == 0


def test_deploy_lock_writes_the_sbom_of_its_wheels_and_receipt_signs_it(
    tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _uv_lock(tmp_path / "project", uv_bin, "tinyweb\n")
    locked = {p["name"]: p for p in tomllib.loads(lock.read_text())["packages"]}
    env = tmp_path / "env"
    assert vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", PYTHON).code == 0
    home = tmp_path / "env.venvkeeper" / "generations"
    raw = (home / "0001.sbom.cdx.json").read_bytes()
    assert json.loads((home / "0001.json").read_text())["sbom_sha256"] == hashlib.sha256(raw).hexdigest()

    sbom = vk(capsys, "sbom", "--env", env, "--json")

    assert sbom.code == 0, sbom.err
    assert "made before" not in sbom.err
    components = {c["name"]: c for c in sbom.json["sbom"]["components"]}
    assert sorted(components) == ["tinyutil", "tinyweb"]
    for name, component in components.items():
        [wheel] = locked[name]["wheels"]
        # uv names no index in a pylock.toml, only each wheel's URL: the purl's download_url.
        purl = PackageURL.from_string(component["purl"])
        assert (purl.type, purl.name, purl.version) == ("pypi", name, locked[name]["version"])
        assert purl.qualifiers == {"download_url": wheel["url"]}
        assert component["hashes"] == [{"alg": "SHA-256", "content": wheel["hashes"]["sha256"]}]
    key = tmp_path / "key"
    assert vk(capsys, "keygen", key).code == 0
    receipt = tmp_path / "receipt.json"
    assert vk(capsys, "receipt", "--env", env, "--key", key, "-o", receipt).code == 0
    payload = json.loads(base64.b64decode(json.loads(receipt.read_text())["payload"]))
    assert payload["predicate"]["sbom_sha256"] == hashlib.sha256(raw).hexdigest()


def test_install_pylock_with_local_wheels_writes_an_sbom_of_generic_purls(
    tmp_path: Path, hand_lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env"
    assert vk(capsys, "install", hand_lock, "--env", env, "--python", PYTHON).code == 0

    sbom = vk(capsys, "sbom", "--env", env, "--json")

    assert sbom.code == 0 and "made before" not in sbom.err, sbom.err
    locked = {p["name"]: p for p in tomllib.loads(hand_lock.read_text())["packages"]}
    for component in sbom.json["sbom"]["components"]:
        name = component["name"]
        assert component["purl"] == f"pkg:generic/{name}@{locked[name]['version']}"
        [wheel] = locked[name]["wheels"]
        assert component["hashes"] == [{"alg": "SHA-256", "content": wheel["hashes"]["sha256"]}]


def test_the_sbom_names_a_locked_url_or_index_without_credentials_query_or_fragment(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    digest, secret = "0" * 64, "https://u:p@files.example/tinyutil-1.1.0-py3-none-any.whl?x=1#frag"
    hashes = f'hashes = {{ sha256 = "{digest}" }}'
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n\n'
        '[[packages]]\nname = "tiny-web"\nversion = "1.0.0"\nindex = "https://u:p@idx.example/simple/"\n'
        f'wheels = [{{ url = "https://idx.example/tiny_web-1.0.0-py3-none-any.whl", {hashes} }}]\n\n'
        f'[[packages]]\nname = "tinyutil"\nversion = "1.1.0"\nwheels = [{{ url = "{secret}", {hashes} }}]\n'
    )
    web = LockedWheel(
        "tiny-web",
        "1.0.0",
        "tiny_web-1.0.0-py3-none-any.whl",
        "https://idx.example/tiny_web-1.0.0-py3-none-any.whl",
        digest,
        None,
    )
    util = LockedWheel("tinyutil", "1.1.0", "tinyutil-1.1.0-py3-none-any.whl", secret, digest, None)

    entries = sbom_entries(lock, [web, util])

    assert entries["tiny-web", "1.0.0"].source == "registry"
    assert entries["tiny-web", "1.0.0"].index == "https://idx.example/simple"
    assert entries["tinyutil", "1.1.0"].qualifiers == (
        ("download_url", "https://files.example/tinyutil-1.1.0-py3-none-any.whl"),
    )
    assert [a.sha256 for e in entries.values() for a in e.wheels] == [digest, digest]
