"""``venvkeeper verify`` and ``deploy --repair``: what a user sees when an environment drifts.

uv installs by hard-linking from its cache, so a file of a deployed environment is the same inode
as the session's cached copy: every tamper here writes a new file and renames it over the old one
(or unlinks it), never opens an installed file for writing. The one test that damages the cache on
purpose has a cache of its own (``fresh_uv_cache``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support.index import LocalIndex
from support.process import run
from support.wheels import make_wheel
from venvkeeper.gateways.uv import find_uv
from vk import Outcome, commit_all, generations, run_in_env, site_packages, snapshot, vk

# -- helpers -------------------------------------------------------------------------------------


def _site(env: Path) -> str:
    """site-packages relative to the environment, as verify names paths (lib/python3.X/site-packages)."""
    return site_packages(env).relative_to(env).as_posix()


def _replace(path: Path, data: bytes) -> None:
    """Give ``path`` new content through a new inode: never write into uv's hard-linked cache file."""
    mode = path.stat().st_mode & 0o777
    scratch = path.with_name(f".{path.name}.tamper")
    scratch.write_bytes(data)
    scratch.chmod(mode)
    os.replace(scratch, path)


def _verify(capsys: pytest.CaptureFixture[str], env: Path, *args: str | Path) -> Outcome:
    return vk(capsys, "verify", "--env", env, "--json", *args)


def _found(outcome: Outcome) -> list[tuple[str, str | None, str | None]]:
    """(category, distribution, path) of every top-level finding."""
    return [(f["category"], f["distribution"], f["path"]) for f in outcome.json["findings"]]


def _checks(outcome: Outcome) -> dict[str, str]:
    return {c["check"]: c["status"] for c in outcome.json["checks"]}


def _record_line(relative: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [relative, f"sha256={digest}", str(len(data))]


def _environ_writing_bytecode() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("workspace")


@pytest.fixture
def deployed(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The workspace project deployed to ``tmp_path/srv/.venv`` (generation 1)."""
    env = tmp_path / "srv" / ".venv"
    result = vk(capsys, "deploy", project, "--env", env)
    assert result.code == 0, result.err
    return env


# -- a clean environment -------------------------------------------------------------------------


def test_deployed_environment_that_has_run_is_clean(
    deployed: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    # Running it writes bytecode into the environment: that is not drift.
    for argv in (
        [env / "bin" / "webapp"],
        [env / "bin" / "tinyweb"],
        [env / "bin" / "python", "-c", "import tinyutil, core"],
    ):
        ran = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=60, env=_environ_writing_bytecode()
        )
        assert ran.returncode == 0, ran.stderr
    assert list((site_packages(env) / "tinyutil" / "__pycache__").glob("*.pyc"))

    result = _verify(capsys, env)

    assert result.code == 0, result.out + result.err
    report = result.json
    assert report["command"] == "verify"
    assert (report["ok"], report["exit_code"], report["clean"]) == (True, 0, True)
    assert report["findings"] == []
    assert report["kind"] == "generation"
    assert report["generation"] == 1
    assert report["directory"] == str(env.resolve())
    assert _checks(result) == {
        "lock": "ok",
        "manifest": "ok",
        "record": "ok",
        "startup-code": "ok",
        "bytecode": "ok",
        "sbom": "ok",
    }
    assert report["files"] > 0
    assert report["bytes_hashed"] > 0

    text = vk(capsys, "verify", "--env", env)
    assert text.code == 0
    assert text.out.startswith(f"{env} (generation 1): clean (")

    with_project = _verify(capsys, env, "--project", project)
    assert with_project.code == 0, with_project.out + with_project.err
    assert with_project.json["findings"] == []
    assert _checks(with_project) == {
        "lock": "ok",
        "manifest": "ok",
        "record": "ok",
        "startup-code": "ok",
        "bytecode": "ok",
        "sbom": "ok",
        "source": "ok",
        "git": "ok",
    }


# -- installed files changed ---------------------------------------------------------------------


def test_a_changed_byte_is_found_against_manifest_and_record(
    deployed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    target = site_packages(env) / "tinyutil" / "__init__.py"
    original = target.read_bytes()
    changed = original.replace(b'"1.1.0"', b'"1.1.9"')
    assert changed != original and len(changed) == len(original)
    _replace(target, changed)
    path = f"{_site(env)}/tinyutil/__init__.py"

    result = _verify(capsys, env)

    assert result.code == 1, result.out + result.err
    assert _found(result) == [("modified", "tinyutil", path)]
    finding = result.json["findings"][0]
    assert "manifest" in finding["reference"]
    assert "RECORD" in finding["reference"]
    assert finding["actual"].startswith("sha256:" + hashlib.sha256(changed).hexdigest())
    assert (result.json["ok"], result.json["exit_code"], result.json["clean"]) == (False, 1, False)
    assert _checks(result) == {
        "lock": "ok",
        "manifest": "findings",
        "record": "findings",
        "startup-code": "ok",
        "bytecode": "ok",
        "sbom": "ok",
    }

    text = vk(capsys, "verify", "--env", env)
    assert text.code == 1
    assert "1 finding " in text.out.splitlines()[0]
    assert f"modified              tinyutil {path}" in text.out

    # --fast compares sizes only: a same-size change goes unseen...
    fast = _verify(capsys, env, "--fast")
    assert fast.code == 0, fast.out
    assert fast.json["fast"] is True
    assert fast.json["findings"] == []
    assert fast.json["bytes_hashed"] == 0

    # ...a change of size does not.
    _replace(target, changed + b"# one more line\n")
    fast = _verify(capsys, env, "--fast")
    assert fast.code == 1, fast.out
    assert _found(fast) == [("modified", "tinyutil", path)]
    assert fast.json["findings"][0]["expected"].endswith(f"({len(original)} bytes)")


def _tinydata_wheel(dest: Path) -> Path:
    """A distribution with a data file and a (never imported) compiled extension."""
    return make_wheel(
        dest,
        "tinydata",
        "1.0.0",
        files={
            "tinydata/__init__.py": '__version__ = "1.0.0"\n',
            "tinydata/table.csv": "".join(f"{i},{i * i}\n" for i in range(200)),
            "tinydata/_speed.cpython-311-x86_64-linux-gnu.so": bytes(range(256)) * 16,
        },
    )


def test_truncated_data_file_and_extension_are_modified(
    make_project: Callable[..., Path], index: LocalIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index.publish(_tinydata_wheel(tmp_path / "wheels"))
    project = make_project("single")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'dependencies = ["tinyutil"]', 'dependencies = ["tinyutil", "tinydata"]'
        )
    )
    run([find_uv(), "lock"], cwd=project)
    commit_all(project, "add tinydata")
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    assert _verify(capsys, env).code == 0

    package = site_packages(env) / "tinydata"
    for name in ("table.csv", "_speed.cpython-311-x86_64-linux-gnu.so"):
        data = (package / name).read_bytes()
        _replace(package / name, data[: len(data) // 2])

    result = _verify(capsys, env)

    assert result.code == 1, result.out + result.err
    site = _site(env)
    assert _found(result) == [
        ("modified", "tinydata", f"{site}/tinydata/_speed.cpython-311-x86_64-linux-gnu.so"),
        ("modified", "tinydata", f"{site}/tinydata/table.csv"),
    ]
    assert [f["reference"] for f in result.json["findings"]] == ["manifest, RECORD"] * 2


def test_deleted_file_is_missing(deployed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = deployed
    (site_packages(env) / "tinyweb" / "__init__.py").unlink()
    path = f"{_site(env)}/tinyweb/__init__.py"

    result = _verify(capsys, env)

    assert result.code == 1, result.out + result.err
    assert _found(result) == [("missing-file", "tinyweb", path)]
    assert result.json["findings"][0]["actual"] == "missing"
    assert f"missing-file          tinyweb {path}" in vk(capsys, "verify", "--env", env).out


def test_added_startup_code_is_unowned(deployed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = deployed
    site = site_packages(env)
    (site / "zz_hook.pth").write_text("import os; os.environ.setdefault('HOOKED', '1')\n")
    (site / "sitecustomize.py").write_text("print('hello from sitecustomize')\n")
    helper = env / "bin" / "helper"
    helper.write_text("#!/bin/sh\necho helper\n")
    helper.chmod(0o755)

    result = _verify(capsys, env)

    assert result.code == 1, result.out + result.err
    rel = _site(env)
    assert _found(result) == [
        ("unowned-startup-code", None, "bin/helper"),
        ("unowned-startup-code", None, f"{rel}/sitecustomize.py"),
        ("unowned-startup-code", None, f"{rel}/zz_hook.pth"),
    ]
    assert _checks(result)["startup-code"] == "findings"
    text = vk(capsys, "verify", "--env", env).out
    assert f"unowned-startup-code  {rel}/zz_hook.pth" in text


def test_file_and_record_rewritten_together_are_caught_by_the_manifest(
    deployed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    site = site_packages(env)
    (dist_info,) = site.glob("tinyutil-*.dist-info")
    record = dist_info / "RECORD"
    payload = b'__version__ = "1.1.0"\n\nimport os  # a back door\n'
    rows = list(csv.reader(io.StringIO(record.read_text())))
    rewritten = [_record_line(row[0], payload) if row[0] == "tinyutil/__init__.py" else row for row in rows]
    assert rewritten != rows
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rewritten)
    _replace(site / "tinyutil" / "__init__.py", payload)
    _replace(record, out.getvalue().encode())

    result = _verify(capsys, env)

    assert result.code == 1, result.out + result.err
    rel = _site(env)
    assert _found(result) == [
        ("modified", "tinyutil", f"{rel}/{dist_info.name}/RECORD"),
        ("modified", "tinyutil", f"{rel}/tinyutil/__init__.py"),
    ]
    assert [f["reference"] for f in result.json["findings"]] == ["manifest", "manifest"]
    # The RECORD agrees with the file: only the sealed manifest tells.
    assert _checks(result)["record"] == "ok"
    assert _checks(result)["manifest"] == "findings"


# -- distributions changed -----------------------------------------------------------------------


def test_extra_distribution_installed_by_pip_is_one_finding(
    deployed: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    # pip itself (the dev environment has it: pypiserver requires it), as an operator would run it.
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            env / "bin" / "python",
            "install",
            "--quiet",
            "--no-deps",
            "--index-url",
            index.url,
            "tinyextra",
        ]
    )

    result = _verify(capsys, env)

    assert result.code == 1, result.out + result.err
    rel = _site(env)
    assert _found(result) == [("extra", "tinyextra", f"{rel}/tinyextra-1.0.0.dist-info")]
    extra = result.json["findings"][0]
    assert (extra["expected"], extra["actual"]) == (None, "1.0.0")
    folded = {f["path"]: f["category"] for f in extra["files"]}
    assert folded[f"{rel}/tinyextra/__init__.py"] == "unexpected-file"
    assert f"{rel}/tinyextra-1.0.0.dist-info/RECORD" in folded
    assert _checks(result)["lock"] == "findings"
    text = vk(capsys, "verify", "--env", env).out
    assert f"extra                 tinyextra {rel}/tinyextra-1.0.0.dist-info" in text
    assert f"and {len(folded)} of its files (unexpected-file)" in text


def test_downgraded_and_removed_distributions_are_package_findings(
    deployed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    python = env / "bin" / "python"
    run([find_uv(), "pip", "install", "--python", python, "--quiet", "tinyutil==1.0.0"])
    run([find_uv(), "pip", "uninstall", "--python", python, "--quiet", "tinydb"])

    result = _verify(capsys, env)

    assert result.code == 1, result.out + result.err
    rel = _site(env)
    assert _found(result) == [
        ("missing", "tinydb", None),
        ("version", "tinyutil", f"{rel}/tinyutil-1.0.0.dist-info"),
    ]
    missing, version = result.json["findings"]
    assert (missing["expected"], missing["actual"], missing["reference"]) == ("1.2.0", None, "manifest")
    assert {"category": "missing-file", "path": f"{rel}/tinydb/__init__.py"} in missing["files"]
    assert (version["expected"], version["actual"], version["reference"]) == ("1.1.0", "1.0.0", "manifest")
    assert {"category": "modified", "path": f"{rel}/tinyutil/__init__.py"} in version["files"]
    assert _checks(result)["lock"] == "findings"


def test_member_installed_editable(deployed: Path, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = deployed
    member = project / "packages" / "webapp"
    run(
        [
            find_uv(),
            "pip",
            "install",
            "--python",
            env / "bin" / "python",
            "--quiet",
            "--no-deps",
            "-e",
            member,
        ]
    )

    result = _verify(capsys, env)

    assert result.code == 1, result.out + result.err
    rel = _site(env)
    assert _found(result) == [("editable", "webapp", f"{rel}/webapp-0.1.0.dist-info")]
    finding = result.json["findings"][0]
    assert finding["expected"] == "non-editable"
    assert finding["actual"] == f"editable ({member.as_uri()})"


def test_member_source_edited_after_deploy(
    deployed: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    source = "packages/webapp/src/webapp/__init__.py"
    init = project / source
    init.write_text(init.read_text().replace('print(f"webapp ', 'print(f"webapp EDITED ', 1))

    # The environment itself is as built.
    assert _verify(capsys, env).code == 0

    result = _verify(capsys, env, "--project", project)

    assert result.code == 1, result.out + result.err
    assert _found(result) == [("source-changed", "webapp", source), ("uncommitted", None, source)]
    changed, uncommitted = result.json["findings"]
    assert changed["reference"] == "generation record"
    assert (uncommitted["actual"], uncommitted["reference"]) == ("modified", "git")
    assert _checks(result)["source"] == "findings"
    assert _checks(result)["git"] == "findings"
    text = vk(capsys, "verify", "--env", env, "--project", project).out
    assert f"source-changed        webapp {source}" in text


# -- an environment venvkeeper did not deploy ----------------------------------------------------


def test_plain_venv_is_checked_against_its_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "plain"
    run([find_uv(), "venv", "--quiet", env])
    run([find_uv(), "pip", "install", "--python", env / "bin" / "python", "--quiet", "tinyutil==1.1.0"])

    result = _verify(capsys, env)

    assert result.code == 0, result.out + result.err
    assert result.json["kind"] == "venv"
    assert result.json["generation"] is None
    assert result.json["findings"] == []
    checks = {c["check"]: c for c in result.json["checks"]}
    assert checks["manifest"]["status"] == "not-possible"
    assert checks["manifest"]["reason"] == "not deployed by venvkeeper"
    assert checks["lock"]["status"] == "not-possible"
    assert checks["record"]["status"] == "ok"
    assert "manifest check not possible: not deployed by venvkeeper" in vk(capsys, "verify", "--env", env).out

    target = site_packages(env) / "tinyutil" / "__init__.py"
    _replace(target, target.read_bytes().replace(b'"1.1.0"', b'"6.6.6"'))
    result = _verify(capsys, env)
    assert result.code == 1, result.out
    assert _found(result) == [("modified", "tinyutil", f"{_site(env)}/tinyutil/__init__.py")]
    assert result.json["findings"][0]["reference"] == "RECORD"


# -- uv's cache damaged through a hard link, and deploy --repair ----------------------------------


def test_edit_in_place_poisons_the_cache_and_repair_refreshes_it(
    fresh_uv_cache: Path,
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_project("single")
    env_a, env_b, env_c = (tmp_path / name / ".venv" for name in ("a", "b", "c"))
    assert vk(capsys, "deploy", project, "--env", env_a).code == 0
    installed = site_packages(env_a) / "tinyutil" / "__init__.py"
    assert installed.stat().st_nlink > 1, "uv did not hard-link from its cache: nothing to test"
    # What an operator does with an editor that writes in place: the cached file changes too.
    with installed.open("r+b") as fh:
        fh.write(b"#")
    path = f"{_site(env_a)}/tinyutil/__init__.py"

    result = _verify(capsys, env_a)

    assert result.code == 1, result.out + result.err
    assert _found(result) == [("modified", "tinyutil", path)]
    finding = result.json["findings"][0]
    assert finding["reference"] == "manifest, RECORD"
    cached = Path(finding["cache"])
    assert cached.is_relative_to(fresh_uv_cache)
    assert cached.samefile(installed)
    text = vk(capsys, "verify", "--env", env_a).out
    assert f"a hard link into uv's cache ({cached})" in text
    assert "`venvkeeper deploy --repair`" in text

    # The next deploy from that cache inherits the damage, and seals it into its manifest.
    assert vk(capsys, "deploy", project, "--env", env_b).code == 0
    inherited = _verify(capsys, env_b)
    assert inherited.code == 1, inherited.out
    assert _found(inherited) == [("modified", "tinyutil", path)]
    assert inherited.json["findings"][0]["reference"] == "RECORD"

    repaired = vk(capsys, "deploy", project, "--env", env_a, "--repair", "--json")

    assert repaired.code == 0, repaired.err
    report = repaired.json
    assert report["changed"] is True
    assert (report["generation"], report["previous"]) == (2, 1)
    assert "tinyutil" in report["repaired"]
    assert "tinyutil" in report["cache_refreshed"]
    assert generations(env_a) == ["0001", "0001.json", "0002", "0002.json"]
    after = _verify(capsys, env_a)
    assert after.code == 0, after.out
    assert after.json["generation"] == 2
    assert run_in_env(env_a, "single").stdout == "single 0.1.0 (tinyutil 1.1.0)\n"
    # A new environment gets clean bytes from the refreshed cache.
    assert vk(capsys, "deploy", project, "--env", env_c).code == 0
    assert _verify(capsys, env_c).code == 0


def test_repair_rebuilds_a_damaged_environment_without_touching_the_cache(
    deployed: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    # A clean environment: --repair is an ordinary deploy, and there is nothing to do.
    clean = vk(capsys, "deploy", project, "--env", env, "--repair", "--json")
    assert clean.code == 0, clean.err
    report = clean.json
    assert report["changed"] is False
    assert (report["repair_findings"], report["repaired"], report["cache_refreshed"]) == (0, [], [])
    assert generations(env) == ["0001", "0001.json"]

    (site_packages(env) / "tinyweb" / "__init__.py").unlink()
    target = site_packages(env) / "tinyutil" / "__init__.py"
    _replace(target, target.read_bytes() + b"# drift\n")

    result = vk(capsys, "deploy", project, "--env", env, "--repair", "--json")

    assert result.code == 0, result.err
    report = result.json
    assert (report["changed"], report["generation"], report["previous"]) == (True, 2, 1)
    assert report["repair_findings"] == 2
    assert report["repaired"] == ["tinyutil", "tinyweb"]
    assert report["cache_refreshed"] == []  # the damaged files were not hard links into uv's cache
    after = _verify(capsys, env)
    assert after.code == 0, after.out
    assert after.json["generation"] == 2
    assert run_in_env(env, "tinyweb").stdout == "tinyweb 1.0.0\n"


def test_check_repair_names_what_a_repair_would_rebuild_and_writes_nothing(
    deployed: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    intact = vk(capsys, "deploy", project, "--env", env, "--check", "--repair")
    assert intact.code == 0, intact.out + intact.err
    assert "would not change (generation 1): verify found nothing to repair; " in intact.out
    target = site_packages(env) / "tinyutil" / "__init__.py"
    _replace(target, target.read_bytes() + b"# drift\n")
    relative = target.relative_to(env)
    before = snapshot(env.parent)

    text = vk(capsys, "deploy", project, "--env", env, "--check", "--repair")
    found = vk(capsys, "deploy", project, "--env", env, "--check", "--repair", "--json")

    assert text.code == 6, text.out + text.err
    assert (
        f"would change: verify found 1 finding in the live environment: modified {relative}; "
        "a new generation would be built" in text.out
    )
    assert "  would repair 1 verify finding (distributions: tinyutil)\n" in text.out
    assert found.code == 6
    assert (found.json["changed"], found.json["repair_findings"], found.json["repaired"]) == (
        True,
        1,
        ["tinyutil"],
    )
    assert snapshot(env.parent) == before
    assert generations(env) == ["0001", "0001.json"]


# -- cannot verify (exit 2) ----------------------------------------------------------------------


def test_missing_environment_cannot_be_verified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / "srv" / ".venv"

    result = vk(capsys, "verify", "--env", env)

    assert result.code == 2
    assert result.out == ""
    assert result.error_line == f"error: {env}: no such environment"
    report = _verify(capsys, env).json
    assert (report["ok"], report["exit_code"]) == (False, 2)
    assert report["error"]["code"] == "cannot-verify"


def test_directory_without_pyvenv_cfg_cannot_be_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "not-a-venv"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")

    result = vk(capsys, "verify", "--env", env)

    assert result.code == 2
    assert result.error_line == f"error: {env}: not a virtual environment (no pyvenv.cfg)"


def test_damaged_manifest_cannot_be_verified(deployed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = deployed
    generations_dir = env.parent / ".venv.venvkeeper" / "generations"
    manifest, record = generations_dir / "0001.manifest.json", generations_dir / "0001.json"
    sealed = manifest.read_bytes()

    # Edited to agree with a tampered file: its sha256 no longer matches the generation record.
    data = json.loads(sealed)
    key = f"{_site(env)}/tinyutil/__init__.py"
    data["files"][key][1] = hashlib.sha256(b"anything").hexdigest()
    manifest.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    result = vk(capsys, "verify", "--env", env)
    assert result.code == 2, result.out
    assert result.error_line == f"error: {manifest}: does not match the sha256 in its generation record"

    # Garbage, and a record edited to agree with it: unreadable.
    garbage = b"\x00\x01 not a manifest {"
    manifest.write_bytes(garbage)
    result = vk(capsys, "verify", "--env", env)
    assert result.code == 2, result.out
    assert result.error_line == f"error: {manifest}: does not match the sha256 in its generation record"
    state = json.loads(record.read_text())
    state["manifest_sha256"] = hashlib.sha256(garbage).hexdigest()
    record.write_text(json.dumps(state))
    result = _verify(capsys, env)
    assert result.code == 2, result.out
    error = result.json["error"]
    assert error["code"] == "cannot-verify"
    assert error["message"].startswith(f"{manifest}: cannot be read")
    assert "--repair" in error["hint"]


def test_manifest_of_the_wrong_shape_cannot_be_verified(
    deployed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    generations_dir = env.parent / ".venv.venvkeeper" / "generations"
    manifest, record = generations_dir / "0001.manifest.json", generations_dir / "0001.json"
    # Valid JSON with the right keys, and a record that agrees with its sha256 (both rewritten).
    damaged = json.loads(manifest.read_bytes())
    damaged["distributions"]["tinyutil"] = "1.1.0"
    raw = json.dumps(damaged).encode()
    manifest.write_bytes(raw)
    state = json.loads(record.read_text())
    state["manifest_sha256"] = hashlib.sha256(raw).hexdigest()
    record.write_text(json.dumps(state))

    result = vk(capsys, "verify", "--env", env)

    assert result.code == 2, result.out
    assert result.error_line.startswith(f"error: {manifest}: cannot be read")


def test_repair_replaces_a_damaged_manifest(
    deployed: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = deployed
    manifest = env.parent / ".venv.venvkeeper" / "generations" / "0001.manifest.json"
    manifest.write_bytes(b"{}")
    assert vk(capsys, "verify", "--env", env).code == 2  # whose hint is: deploy --repair

    result = vk(capsys, "deploy", project, "--env", env, "--repair", "--json")

    assert result.code == 0, result.out + result.err
    assert result.json["generation"] == 2
    assert _verify(capsys, env).code == 0


# -- read-only -----------------------------------------------------------------------------------


def test_verify_writes_nothing(deployed: Path, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = deployed
    target = site_packages(env) / "tinyutil" / "__init__.py"
    _replace(target, target.read_bytes() + b"# drift\n")
    init = project / "packages" / "core" / "src" / "core" / "__init__.py"
    init.write_text(init.read_text() + "# drift\n")
    before_env, before_project = snapshot(env.parent), snapshot(project)

    codes = [
        vk(capsys, "verify", "--env", env).code,
        vk(capsys, "verify", "--env", env, "--json", "--fast").code,
        vk(capsys, "verify", "--env", env, "--project", project).code,
        vk(capsys, "verify", "--env", env, "--project", project, "--json").code,
    ]

    assert codes == [1, 1, 1, 1]
    assert snapshot(env.parent) == before_env
    assert snapshot(project) == before_project


def test_in_place_environment_is_verified_against_its_own_manifest(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The parent is reached through a symlink (as /var/lib on a bind-mounted volume often is): the
    # environment is still the in-place one, with its record and manifest beside it.
    (tmp_path / "data").mkdir()
    (tmp_path / "srv").symlink_to(tmp_path / "data")
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env, "--in-place").code == 0
    assert (tmp_path / "srv" / ".venv.venvkeeper" / "in-place.manifest.json").is_file()

    clean = _verify(capsys, env)
    assert clean.code == 0, clean.out
    assert (clean.json["kind"], clean.json["generation"]) == ("in-place", None)
    assert _checks(clean)["manifest"] == "ok"

    path = site_packages(env) / "tinyutil" / "__init__.py"
    _replace(path, path.read_bytes() + b"# hot-fix\n")
    drifted = _verify(capsys, env)
    assert drifted.code == 1
    assert _found(drifted) == [("modified", "tinyutil", f"{_site(env)}/tinyutil/__init__.py")]
