"""``verify --project`` on a member whose version is dynamic (``dynamic = ["version"]``).

uv.lock holds no version for such a member: uv computes it when it builds. verify compares it with
the version its generation recorded, so a fresh deploy is clean, and a member installed at another
version is still a ``version`` finding.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from support.process import run
from support.wheels import make_wheel
from venvkeeper.gateways.uv import find_uv
from vk import Outcome, run_in_env, site_packages, vk


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("dynversion")


def _verify(capsys: pytest.CaptureFixture[str], env: Path, *args: str | Path) -> Outcome:
    return vk(capsys, "verify", "--env", env, "--json", *args)


def _member_version_in_lock(project: Path) -> str | None:
    lock = tomllib.loads((project / "uv.lock").read_text())
    (member,) = [p for p in lock["package"] if p["name"] == "dynversion"]
    version: str | None = member.get("version")
    return version


def test_a_fresh_deploy_of_a_dynamic_version_member_verifies_clean(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _member_version_in_lock(project) is None  # what makes the member's version unknown to the lock
    env = tmp_path / "srv" / ".venv"
    deployed = vk(capsys, "deploy", project, "--env", env)
    assert deployed.code == 0, deployed.err
    assert run_in_env(env, "dynversion").stdout.strip() == "dynversion 0.27.1"
    assert list(site_packages(env).glob("helper-3.1.4.dist-info"))  # the path dependency, built

    result = _verify(capsys, env, "--project", project)

    assert result.code == 0, result.out + result.err
    assert result.json["findings"] == []
    assert {c["check"]: c["status"] for c in result.json["checks"]}["lock"] == "ok"
    text = vk(capsys, "verify", "--env", env, "--project", project)
    assert text.code == 0, text.out
    assert "expected -" not in text.out


def test_a_member_installed_at_another_version_is_a_finding_against_the_record(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    # Someone installs other builds of the member and of its path dependency by hand.
    wheels = [
        make_wheel(
            tmp_path / "wheels",
            "dynversion",
            "0.28.0",
            files={"dynversion/__init__.py": '__version__ = "0.28.0"\n\ndef main() -> int:\n    return 0\n'},
            console_scripts={"dynversion": "dynversion:main"},
        ),
        make_wheel(
            tmp_path / "wheels", "helper", "3.2.0", files={"helper/__init__.py": '__version__ = "3.2.0"\n'}
        ),
    ]
    run([find_uv(), "pip", "install", "--python", env / "bin" / "python", "--quiet", "--no-deps", *wheels])
    assert list(site_packages(env).glob("dynversion-0.28.0.dist-info"))

    result = _verify(capsys, env, "--project", project)

    assert result.code == 1, result.out + result.err
    versions = [f for f in result.json["findings"] if f["category"] == "version"]
    assert [(f["distribution"], f["expected"], f["actual"], f["reference"]) for f in versions] == [
        ("dynversion", "0.27.1", "0.28.0", "generation record"),
        ("helper", "3.1.4", "3.2.0", "generation record"),
    ]
    text = vk(capsys, "verify", "--env", env, "--project", project)
    assert text.code == 1
    assert "expected 0.27.1, found 0.28.0" in text.out


def test_a_venv_venvkeeper_did_not_build_has_no_version_to_compare_a_dynamic_member_with(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "plain"
    # From a copy: setuptools builds the path dependency in its own tree (build/).
    copy = shutil.copytree(project, tmp_path / "copy")
    run(
        [find_uv(), "sync", "--frozen", "--quiet", "--no-editable", "--no-default-groups"],
        cwd=copy,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(env)},
    )
    assert list(site_packages(env).glob("dynversion-0.27.1.dist-info"))

    result = _verify(capsys, env, "--project", project)

    assert result.code == 0, result.out + result.err
    assert result.json["findings"] == []
