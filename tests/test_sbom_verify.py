"""A generation's SBOM file under ``verify`` and ``deploy --repair`` (issue 16).

The SBOM lives beside the generation's record (``generations/NNNN.sbom.cdx.json``), whose
``sbom_sha256`` names it. ``verify`` reports a missing or altered one as a finding naming the file, the
sha256 expected and found, and the command that puts it right; a generation recorded before SBOMs (no
``sbom_sha256``) has nothing to hold it to. ``deploy --repair`` rewrites it from the sealed manifest and
the lock when that gives the very bytes the record names, without touching the venv; otherwise a new
generation is sealed with an SBOM of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.packages import fake_wheel
from vk import snapshot, vk

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


REWRITES = "rewrites it from the sealed manifest and the lock"


def _home(env: Path) -> Path:
    return env.parent / f"{env.name}.venvkeeper"


def _found(result: Any) -> list[tuple[str, str | None]]:
    return [(f["category"], f["path"]) for f in result.json["findings"]]


def _checks(result: Any) -> dict[str, str]:
    return {c["check"]: c["status"] for c in result.json["checks"]}


def _flip_one_byte(path: Path) -> bytes:
    """One byte of ``path`` changed (same length), written as a new file: the sealed one is not edited."""
    data = bytearray(path.read_bytes())
    at = data.index(b'"name"') + 1
    data[at] ^= 0x20  # "name" -> "Name"
    path.unlink()
    path.write_bytes(bytes(data))
    return bytes(data)


@pytest.fixture
def deployed(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path]:
    """(the project, --env) after one deploy."""
    project = make_project("workspace")
    env = tmp_path / "srv" / ".venv"
    result = vk(capsys, "deploy", project, "--env", env)
    assert result.code == 0, result.err
    return project, env


def test_an_altered_sbom_is_a_finding_and_repair_writes_back_the_same_bytes(
    deployed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = deployed
    path = _home(env) / "generations" / "0001.sbom.cdx.json"
    original = path.read_bytes()
    clean = vk(capsys, "verify", "--env", env, "--json")
    assert (clean.code, _found(clean), _checks(clean)["sbom"]) == (0, [], "ok"), clean.out
    altered = _flip_one_byte(path)
    venv = snapshot(env.resolve())

    found = vk(capsys, "verify", "--env", env, "--json")
    text = vk(capsys, "verify", "--env", env)
    planned = vk(capsys, "deploy", project, "--env", env, "--repair", "--check", "--json")
    assert path.read_bytes() == altered  # --check writes nothing
    repaired = vk(capsys, "deploy", project, "--env", env, "--repair", "--json")
    after = vk(capsys, "verify", "--env", env, "--json")

    assert found.code == 1, found.out + found.err
    assert _found(found) == [("sbom", str(path))]
    [finding] = found.json["findings"]
    assert finding["expected"] == f"sha256:{hashlib.sha256(original).hexdigest()}"
    assert finding["actual"] == f"sha256:{hashlib.sha256(altered).hexdigest()} ({len(altered)} bytes)"
    assert finding["fix"] == f"`venvkeeper deploy --repair` {REWRITES}"
    assert _checks(found)["sbom"] == "findings"
    assert text.code == 1
    assert "1 finding " in text.out.splitlines()[0]
    assert f"  sbom                  {path}\n" in text.out
    assert f"      expected sha256:{hashlib.sha256(original).hexdigest()}, found sha256:" in text.out
    assert (
        "      `venvkeeper deploy --repair` rewrites it from the sealed manifest and the lock\n" in text.out
    )
    assert planned.code == 0 and planned.json["changed"] is False, planned.out + planned.err
    assert f"would rewrite {path} (altered)" in planned.json["reason"]
    assert repaired.code == 0, repaired.out + repaired.err
    assert (repaired.json["changed"], repaired.json["generation"]) == (False, 1)
    assert repaired.json["repair_findings"] == 1
    assert f"rewrote {path} (altered) from the sealed manifest and the lock" in repaired.json["reason"]
    assert path.read_bytes() == original
    assert snapshot(env.resolve()) == venv  # the live venv was not touched
    assert (after.code, _found(after), _checks(after)["sbom"]) == (0, [], "ok"), after.out


def test_a_missing_sbom_is_a_finding_and_repair_writes_it_again(
    deployed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = deployed
    path = _home(env) / "generations" / "0001.sbom.cdx.json"
    original = path.read_bytes()
    path.unlink()

    found = vk(capsys, "verify", "--env", env, "--json")
    repaired = vk(capsys, "deploy", project, "--env", env, "--repair")
    after = vk(capsys, "verify", "--env", env)

    assert found.code == 1
    assert _found(found) == [("sbom", str(path))]
    assert found.json["findings"][0]["actual"] == "missing"
    assert repaired.code == 0, repaired.err
    assert f"is unchanged (generation 1): rewrote {path} (missing)" in repaired.out
    assert path.read_bytes() == original
    assert after.code == 0 and ": clean (" in after.out, after.out


def test_a_generation_recorded_before_sboms_is_no_finding(
    deployed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = deployed
    generations = _home(env) / "generations"
    (generations / "0001.sbom.cdx.json").unlink()
    record = json.loads((generations / "0001.json").read_text())
    del record["sbom_sha256"]
    (generations / "0001.json").unlink()
    (generations / "0001.json").write_text(json.dumps(record))

    result = vk(capsys, "verify", "--env", env, "--json")
    text = vk(capsys, "verify", "--env", env)
    repair = vk(capsys, "deploy", project, "--env", env, "--repair", "--json")

    assert (result.code, result.json["findings"]) == (0, []), result.out
    assert _checks(result)["sbom"] == "not-possible"
    assert text.code == 0 and "sbom check not possible: its record names no SBOM" in text.out
    assert repair.code == 0 and repair.json["changed"] is False
    assert repair.json["reason"].startswith("verify found nothing to repair; ")
    assert not (generations / "0001.sbom.cdx.json").exists()  # nothing to rewrite it as


def test_an_sbom_that_cannot_be_built_again_is_left_and_a_new_generation_sealed(
    deployed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The record names a commit the SBOM built now cannot match (as when the lock it came from is no
    longer at hand): the repair writes no bytes the record does not vouch for, and builds afresh."""
    project, env = deployed
    generations = _home(env) / "generations"
    path = generations / "0001.sbom.cdx.json"
    original = path.read_bytes()
    altered = _flip_one_byte(path)
    record = json.loads((generations / "0001.json").read_text())
    assert record["git_commit"]
    record["git_commit"] = "0" * 40
    (generations / "0001.json").unlink()
    (generations / "0001.json").write_text(json.dumps(record))

    repaired = vk(capsys, "deploy", project, "--env", env, "--repair", "--json")
    after = vk(capsys, "verify", "--env", env, "--json")

    assert repaired.code == 0, repaired.err
    assert (repaired.json["changed"], repaired.json["generation"]) == (True, 2)
    assert repaired.json["repair_findings"] == 1
    assert path.read_bytes() == altered  # the old generation's file: not rewritten with other bytes
    assert (generations / "0002.sbom.cdx.json").read_bytes() == original  # the same content, sealed anew
    assert (after.code, after.json["generation"], _found(after)) == (0, 2, []), after.out


def _hand_lock(directory: Path) -> Path:
    """A pylock.toml by hand (PEP 751) of two local wheels."""
    (directory / "wheels").mkdir(parents=True)
    lines = ['lock-version = "1.0"', 'created-by = "hand"', 'requires-python = ">=3.10"', ""]
    for name, version in (("tinyutil", "1.1.0"), ("tinyweb", "1.0.0")):
        wheel = fake_wheel(directory / "wheels", name, version)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines += [
            "[[packages]]",
            f'name = "{name}"',
            f'version = "{version}"',
            f'wheels = [{{ name = "{wheel.name}", path = "./{os.path.relpath(wheel, directory)}", '
            f'hashes = {{ sha256 = "{digest}" }} }}]',
            "",
        ]
    lock = directory / "pylock.toml"
    lock.write_text("\n".join(lines))
    return lock


def test_a_pylock_generation_s_sbom_is_checked_and_rewritten_from_its_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _hand_lock(tmp_path / "project")
    env = tmp_path / "env"
    assert vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", PYTHON).code == 0
    path = _home(env) / "generations" / "0001.sbom.cdx.json"
    original = path.read_bytes()
    path.unlink()

    deploy = ("deploy", "--lock", lock, "--env", env, "--python", PYTHON, "--repair", "--json")
    before = snapshot(tmp_path)
    found = vk(capsys, "verify", "--env", env, "--json")
    against_lock = vk(capsys, "verify", "--env", env, "--lock", lock, "--json")
    planned = vk(capsys, *deploy, "--check")
    assert snapshot(tmp_path) == before  # --check wrote nothing
    repaired = vk(capsys, *deploy)
    after = vk(capsys, "verify", "--env", env, "--lock", lock, "--json")

    assert found.code == 1 and _found(found) == [("sbom", str(path))], found.out
    assert (
        found.json["findings"][0]["fix"] == f"`venvkeeper deploy --lock {lock.resolve()} --repair` {REWRITES}"
    )
    assert against_lock.code == 1 and ("sbom", str(path)) in _found(against_lock), against_lock.out
    # Only the file beside the record would be written back: the environment stays, exit 0, said.
    assert (planned.code, planned.json["changed"], planned.json["repair_findings"]) == (0, False, 1)
    assert planned.json["reason"].startswith(f"would rewrite {path} (missing) as its record names it; ")
    assert repaired.code == 0, repaired.err
    assert (repaired.json["changed"], repaired.json["generation"]) == (False, 1)
    assert f"rewrote {path} (missing)" in repaired.json["reason"]
    assert path.read_bytes() == original
    assert (after.code, _found(after), _checks(after)["sbom"]) == (0, [], "ok"), after.out


def test_an_installed_generation_s_sbom_is_written_back_from_its_bundle(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A generation installed from a bundle holds the bundle's own SBOM, which no rebuild reproduces:
    the fix names the bundle's copy, not ``deploy --repair`` (which would build whatever project it
    runs in over the installed app), and following it makes verify clean."""
    bundle = tmp_path / "app.tar.gz"
    packed = vk(capsys, "pack", make_project("single"), "-o", bundle)
    assert packed.code == 0, packed.err
    env = tmp_path / "srv" / ".venv"
    monkeypatch.chdir(tmp_path)  # installed by a relative path; the fix names it from anywhere
    installed = vk(capsys, "install", bundle.name, "--env", env)
    assert installed.code == 0, installed.err
    monkeypatch.chdir(env.parent)
    path = _home(env) / "generations" / "0001.sbom.cdx.json"
    original = path.read_bytes()
    path.unlink()
    venv = snapshot(env.resolve())

    found = vk(capsys, "verify", "--env", env, "--json")
    text = vk(capsys, "verify", "--env", env)
    printed = vk(capsys, "sbom", "--env", env)
    fix = (
        f"`venvkeeper sbom {bundle} -o {path}` writes back the copy the bundle carries (if you still have it)"
    )
    assert (found.code, _found(found)) == (1, [("sbom", str(path))]), found.out
    assert found.json["findings"][0]["fix"] == fix
    assert "deploy --repair" not in text.out and fix in text.out, text.out
    assert printed.code != 0 and fix in printed.err, printed.err

    written = vk(capsys, "sbom", bundle, "-o", path)
    after = vk(capsys, "verify", "--env", env, "--json")
    assert written.code == 0, written.err
    assert path.read_bytes() == original
    assert (after.code, _found(after), _checks(after)["sbom"]) == (0, [], "ok"), after.out
    assert snapshot(env.resolve()) == venv


def test_check_repair_counts_and_names_a_damaged_file_and_the_sbom_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A modified file and a missing SBOM: ``--check --repair`` says two findings and names both, as
    ``repair_findings`` counts them."""
    lock = _hand_lock(tmp_path / "project")
    env = tmp_path / "env"
    deploy = ("deploy", "--lock", lock, "--env", env, "--python", PYTHON, "--repair")
    assert vk(capsys, *deploy[:-1]).code == 0
    path = _home(env) / "generations" / "0001.sbom.cdx.json"
    path.unlink()
    (module,) = env.resolve().glob("lib/python*/site-packages/tinyutil/__init__.py")
    module.unlink()  # a new file, not an edit of uv's cache entry
    module.write_text("TAMPERED = True\n")

    planned = vk(capsys, *deploy, "--check", "--json")

    assert (planned.code, planned.json["repair_findings"]) == (6, 2), planned.out + planned.err
    reason = planned.json["reason"]
    assert reason.startswith("verify found 2 findings in the live environment: modified "), reason
    assert f"would rewrite {path} (missing)" in reason
