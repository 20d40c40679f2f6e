"""One selection rule: the runtime dependencies plus exactly the groups named (``--group`` or
``[tool.venvkeeper] groups``), never uv's ``[tool.uv] default-groups``.

The fixture project ``defaultgroups`` sets ``default-groups = ["dev", "docs", "tests"]`` with a
package of its own in each group, so a command that lets uv's defaults in installs a package that
names the group it came from.
"""

from __future__ import annotations

import os
import re
import tarfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.utils import canonicalize_name, parse_wheel_filename

from support.process import run
from venvkeeper.bundle import locked
from venvkeeper.gateways.uv import find_uv
from venvkeeper.project import selection
from vk import commit_all, site_packages, vk

RUNTIME = {"tinyweb": "1.0.0", "tinyutil": "1.1.0"}
GROUP_PACKAGES = {"dev": "tinyextra", "docs": "tinydocs", "tests": "tinytests"}


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("defaultgroups")


def _installed(env: Path) -> dict[str, str]:
    """{name: version} of every distribution in the environment, read from its dist-info folders."""
    found = {}
    for dist_info in site_packages(env).glob("*.dist-info"):
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
        found[canonicalize_name(name)] = version
    return found


def _bundled(bundle: Path) -> dict[str, str]:
    with tarfile.open(bundle) as tar:
        wheels = [Path(m.name).name for m in tar.getmembers() if m.name.endswith(".whl")]
    return {str(parse_wheel_filename(w)[0]): str(parse_wheel_filename(w)[1]) for w in wheels}


def _exported(text: str) -> dict[str, str]:
    pins = (re.match(r"([A-Za-z0-9._-]+)==(\S+)", line) for line in text.splitlines())
    return {canonicalize_name(m[1]): m[2] for m in pins if m}


def _raw_uv_sync(project: Path, env: Path, *flags: str) -> dict[str, str]:
    """What uv itself installs with these flags (into ``env``, nothing written into the project)."""
    run(
        [find_uv(), "sync", "--frozen", "--quiet", "--no-editable", *flags],
        cwd=project,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(env)},
    )
    return _installed(env)


@pytest.mark.parametrize(
    ("how", "groups"),
    [
        ("nothing named", ()),
        ("--group docs", ("docs",)),
        ("[tool.venvkeeper] groups", ("tests",)),
    ],
)
def test_deploy_pack_install_and_export_carry_the_runtime_set_and_the_named_groups_only(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, groups: tuple[str, ...]
) -> None:
    if how == "[tool.venvkeeper] groups":
        pyproject = project / "pyproject.toml"
        named = ", ".join(f'"{group}"' for group in groups)
        pyproject.write_text(pyproject.read_text() + f"\n[tool.venvkeeper]\ngroups = [{named}]\n")
        commit_all(project, "deploy the tests group")
    args = [arg for group in groups for arg in ("--group", group)] if how == "--group docs" else []
    wanted = {**RUNTIME, **{GROUP_PACKAGES[g]: "1.0.0" for g in groups}}

    # uv's own view: a developer's `uv sync` gets every default group; the selection's flags do not.
    developer = _raw_uv_sync(project, tmp_path / "developer")
    assert set(GROUP_PACKAGES.values()) <= set(developer)
    raw = _raw_uv_sync(project, tmp_path / "raw", *selection.uv_args(groups))
    assert raw == wanted

    env = tmp_path / "srv" / ".venv"
    deployed = vk(capsys, "deploy", project, "--env", env, "--json", *args)
    assert deployed.code == 0, deployed.err
    assert _installed(env) == wanted
    assert {p["name"]: p["new"] for p in deployed.json["added"]} == wanted

    bundle = tmp_path / "app.tar.gz"
    packed = vk(capsys, "pack", project, "-o", bundle, "--json", *args)
    assert packed.code == 0, packed.err
    assert _bundled(bundle) == wanted
    installed_env = tmp_path / "other" / ".venv"
    installed = vk(capsys, "install", bundle, "--env", installed_env)
    assert installed.code == 0, installed.err
    assert _installed(installed_env) == wanted

    exported = vk(capsys, "export", project, "--format", "requirements", *args)
    assert exported.code == 0, exported.err
    assert _exported(exported.out) == wanted

    verified = vk(capsys, "verify", "--env", env, "--project", project, "--json")
    assert verified.code == 0, verified.out + verified.err
    assert verified.json["findings"] == []


def test_uv_variables_in_the_environment_do_not_change_the_selection(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An operator's shell that drops the docs group and asks for dev, as uv reads them.
    monkeypatch.setenv("UV_NO_GROUP", "docs")
    monkeypatch.setenv("UV_DEV", "1")

    exported = vk(capsys, "export", project, "--format", "requirements", "--group", "docs")

    assert exported.code == 0, exported.err
    assert _exported(exported.out) == {**RUNTIME, "tinydocs": "1.0.0"}


@pytest.mark.parametrize("default_groups", ['["dev", "docs", "tests"]', '"all"'])
@pytest.mark.parametrize("groups", [(), ("dev",), ("docs", "tests")])
def test_packs_lock_walker_selects_what_uv_exports_for_the_same_groups(
    project: Path, groups: tuple[str, ...], default_groups: str
) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    if f"default-groups = {default_groups}" not in text:
        pyproject.write_text(re.sub(r"default-groups = .*", f"default-groups = {default_groups}", text))
        run([find_uv(), "lock", "--quiet"], cwd=project)  # uv.lock records the root's default-groups
    lock = tomllib.loads((project / "uv.lock").read_text())
    exported = run(
        [
            find_uv(),
            "export",
            "--frozen",
            "--quiet",
            "--all-packages",
            "--no-emit-workspace",
            "--no-hashes",
            *selection.uv_args(groups),
        ],
        cwd=project,
    ).stdout

    walked = locked.runtime_packages(lock, groups, default_environment())

    assert walked == sorted(f"{name}=={version}" for name, version in _exported(exported).items())
    assert {p.partition("==")[0] for p in walked} == {*RUNTIME, *(GROUP_PACKAGES[g] for g in groups)}


# The update's tests: which of the group packages the candidate can import.
_PROBE = """import importlib.util
print("importable:", *[n for n in ("tinyextra", "tinydocs") if importlib.util.find_spec(n)])
"""


def test_update_tests_with_the_test_groups_and_deploys_without_uvs_default_groups(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    project = make_project("updatable")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('dev = ["tinyextra"]', 'dev = ["tinyextra"]\ndocs = ["tinydocs"]')
    text = text.replace('test-command = "python check_deps.py"', 'test-command = "python probe.py"')
    (project / "probe.py").write_text(_PROBE)
    pyproject.write_text(text + '\n[tool.uv]\ndefault-groups = ["dev", "docs"]\n')
    run([find_uv(), "lock", "--quiet"], cwd=project)
    commit_all(project, "docs among uv's default groups")
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    assert {"tinyextra", "tinydocs"}.isdisjoint(_installed(env))
    publish("tinydb", "1.2.1")

    result = vk(capsys, "update", project, "--env", env, "--no-push", "--json")

    assert result.code == 0, result.out + result.err
    report = result.json
    assert report["outcome"] == "updated"
    # The candidate: the deployed groups plus the test group (dev), not docs.
    assert "importable: tinyextra\n" in report["tests"]["candidate"]["output_tail"] + "\n"
    assert _installed(env) == {"tinydb": "1.2.1", **RUNTIME}


def test_uv_variables_cannot_point_a_deploy_at_the_source_or_drop_the_members(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # uv reads UV_WORKING_DIR (it would lock and build in the source tree) and these switches,
    # which would leave the members out or install them as links into the source.
    from vk import snapshot

    workspace = make_project("workspace")
    for name in ("UV_NO_INSTALL_PROJECT", "UV_NO_INSTALL_WORKSPACE", "UV_NO_INSTALL_LOCAL", "UV_NO_EDITABLE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("UV_WORKING_DIR", str(workspace))
    before = snapshot(workspace)
    env = tmp_path / "srv" / ".venv"

    deployed = vk(capsys, "deploy", workspace, "--env", env)

    assert deployed.code == 0, deployed.err
    assert {"core", "webapp"} <= set(_installed(env))
    assert not list(site_packages(env).glob("*.pth"))  # no editable link into the source
    assert snapshot(workspace) == before


def test_an_environment_deployed_under_the_old_rule_converges_once(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the rule, deploy passed uv `--no-dev`, so uv's other default groups went into
    production and the fingerprint did not name a rule. The next deploy rebuilds it once."""
    from venvkeeper.generations import stamp as stamps
    from venvkeeper.project import plan

    new_to_json = plan.Options.to_json

    def old_to_json(self: plan.Options) -> dict[str, object]:
        return {k: v for k, v in new_to_json(self).items() if k != "selection"}

    env = tmp_path / "srv" / ".venv"
    with monkeypatch.context() as old:
        old.setattr(
            selection, "uv_args", lambda groups: ["--no-dev", *(a for g in groups for a in ("--group", g))]
        )
        old.setattr(plan.Options, "to_json", old_to_json)
        old.setattr(stamps, "SCHEMA", 1)
        first = vk(capsys, "deploy", project, "--env", env, "--json")
    assert first.code == 0, first.err
    assert {"tinydocs", "tinytests"} <= set(_installed(env))  # what the old rule deployed

    converged = vk(capsys, "deploy", project, "--env", env, "--json")

    assert converged.code == 0, converged.err
    assert (converged.json["changed"], converged.json["generation"]) == (True, 2)
    assert _installed(env) == RUNTIME
    again = vk(capsys, "deploy", project, "--env", env, "--json")
    assert (again.code, again.json["changed"]) == (0, False)
