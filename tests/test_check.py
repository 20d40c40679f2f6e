"""``deploy --check`` (issue 15): says exactly what the next deploy does, and writes nothing at all.

Each case pairs the check with the real deploy that follows it, across the kinds of change: a first
deploy, nothing, a member's code, a dependency bumped, added and removed, a group added, a lock change
outside the selected groups, ``--no-hooks``, ``--in-place``; and a stale lock, refused the same way.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.process import run
from venvkeeper.gateways.uv import find_uv
from vk import Outcome, commit_all, generations, vk

WOULD_CHANGE = 6


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (itself included) with its size and mtime: what "nothing written" means."""
    if not os.path.lexists(root):
        return {}
    found: dict[str, tuple[int, int]] = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        found[str(path)] = (st.st_size if not path.is_dir() else 0, st.st_mtime_ns)
    return found


@pytest.fixture(autouse=True)
def _own_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A $TMPDIR of the test's own, so that "nothing left behind" can be looked at there too."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches it: made to read $TMPDIR again


def _untouched(env: Path, project: Path) -> dict[str, dict[str, tuple[int, int]]]:
    cache = Path(os.environ["UV_CACHE_DIR"])
    home = env.parent / f"{env.name}.venvkeeper"
    return {
        # What is left there (the directory's own mtime moves with every scratch directory made and
        # removed in it, the staging copy's included).
        "tmpdir": dict.fromkeys(os.listdir(os.environ["TMPDIR"]), (0, 0)),
        "env": _tree(env),
        "home": _tree(home),
        "project": {k: v for k, v in _tree(project).items() if "/.git/" not in k and not k.endswith("/.git")},
        "uv-cache": _tree(cache),
    }


def _package_names(report: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    return {
        kind: [(e["name"], e["old"], e["new"]) for e in report["packages"][kind]]
        for kind in ("added", "removed", "changed")
    }


def _paired(
    capsys: pytest.CaptureFixture[str], project: Path, env: Path, *args: str
) -> tuple[Outcome, Outcome]:
    """``deploy --check`` then the real deploy with the same arguments: the check wrote nothing, and
    its plan is what the deploy did."""
    before = _untouched(env, project)
    checked = vk(capsys, "deploy", project, "--env", env, *args, "--check", "--json")
    assert _untouched(env, project) == before, "--check wrote something"
    done = vk(capsys, "deploy", project, "--env", env, *args, "--json")
    assert done.code in (0, 4), done.err
    plan, real = checked.json, done.json
    assert checked.code == (WOULD_CHANGE if real["changed"] else 0), checked.out
    assert plan["check"] is True and "check" not in real
    assert plan["ok"] is True
    assert plan["changed"] == real["changed"]
    assert _package_names(plan) == _package_names(real)
    assert (plan["rebuilt"], plan["reused"]) == (real["rebuilt"], real["reused"])
    assert [h["command"] for h in plan["hooks"]] == [h["command"] for h in real["hooks"]]
    assert plan["in_place"] == real["in_place"]
    return checked, done


def _bump_lock(project: Path, *args: str) -> None:
    run([find_uv(), "lock", *args], cwd=project)
    commit_all(project, f"uv lock {' '.join(args)}")


def _set_webapp_dependencies(project: Path, dependencies: str) -> None:
    pyproject = project / "packages" / "webapp" / "pyproject.toml"
    text = pyproject.read_text()
    start = text.index("dependencies = [")
    end = text.index("]", start) + 1
    pyproject.write_text(text[:start] + f"dependencies = [{dependencies}]" + text[end:])


def _with_hook(project: Path, marker: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + f"\n[tool.venvkeeper.hooks]\npost-deploy = ['echo ran >> {marker}']\n"
    )
    commit_all(project, "a hook")


def _edit_member(project: Path, marker: str) -> None:
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text().replace('print(f"webapp ', f'print(f"webapp {marker} ', 1))
    commit_all(project, f"edit {marker}")


def test_check_equals_the_next_deploy_across_the_kinds_of_change(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    project = make_project("workspace")
    marker = tmp_path / "migrated"
    _with_hook(project, marker)
    env = tmp_path / "srv" / ".venv"

    # A first deploy: nothing at --env (not even its parent), everything added.
    first, _ = _paired(capsys, project, env)
    assert first.json["changed"] is True and first.json["generation"] is None
    assert {"tinyweb", "tinyutil", "tinydb", "webapp", "core"} <= {e["name"] for e in first.json["added"]}
    assert first.json["hooks"] == [{"command": f"echo ran >> {marker}"}]
    assert marker.read_text() == "ran\n"  # the real deploy ran it; the check did not

    # Nothing changed.
    same, _ = _paired(capsys, project, env)
    assert (same.code, same.json["changed"], same.json["hooks"]) == (0, False, [])

    # A member's code, without a version bump: rebuilt, no package version moves.
    _edit_member(project, "EDITED")
    member, _ = _paired(capsys, project, env)
    assert member.json["rebuilt"] == ["webapp"] and not any(member.json["packages"].values())

    # A dependency bumped in the lock.
    publish("tinyutil", "1.2.0")
    _bump_lock(project, "--upgrade-package", "tinyutil")
    bumped, _ = _paired(capsys, project, env)
    assert _package_names(bumped.json)["changed"] == [("tinyutil", "1.1.0", "1.2.0")]

    # A dependency added, then removed again.
    _set_webapp_dependencies(project, '"core", "tinyweb", "tinydb", "tinyextra"')
    _bump_lock(project)
    added, _ = _paired(capsys, project, env)
    assert _package_names(added.json)["added"] == [("tinyextra", "", "1.0.0")]
    _set_webapp_dependencies(project, '"core", "tinyweb", "tinydb"')
    _bump_lock(project)
    removed, _ = _paired(capsys, project, env)
    assert _package_names(removed.json)["removed"] == [("tinyextra", "1.0.0", "")]

    # A group: what it adds (tinyextra is in dev and already installed, so tinydocs stands in).
    pyproject = project / "pyproject.toml"
    groups = 'dev = ["tinyextra"]\ndocs = ["tinydocs"]'
    pyproject.write_text(pyproject.read_text().replace('dev = ["tinyextra"]', groups))
    _bump_lock(project)
    grouped, _ = _paired(capsys, project, env, "--group", "docs")
    assert _package_names(grouped.json)["added"] == [("tinydocs", "", "1.0.0")]

    # --no-hooks: a change that runs no hook, and says so.
    _edit_member(project, "QUIET")
    quiet, _ = _paired(capsys, project, env, "--group", "docs", "--no-hooks")
    assert quiet.json["hooks"] == [] and "(--no-hooks)" in quiet.json["reason"]
    assert marker.read_text().count("ran") == 6  # the runs before: first, edit, bump, add, remove, group


def test_check_of_an_in_place_deploy_and_of_an_adopted_venv(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    inplace = tmp_path / "image" / "venv"
    _paired(capsys, project, inplace, "--in-place")
    again, _ = _paired(capsys, project, inplace, "--in-place")
    assert again.code == 0

    # A plain venv at --env is adopted: the diff starts from what it holds.
    plain = tmp_path / "plain"
    run([find_uv(), "venv", "-q", str(plain)])
    adopted, done = _paired(capsys, project, plain)
    assert adopted.code == WOULD_CHANGE and done.json["adopted"] == 1


def test_check_text_and_diff(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    env = tmp_path / ".venv"

    summary = vk(capsys, "deploy", project, "--env", env, "--check")
    assert summary.code == WOULD_CHANGE, summary.err
    assert summary.out.startswith(f"{env} would change: a new generation would be built")
    assert "  would build members: core, webapp\n" in summary.out
    assert "added, 0 removed, 0 changed (--diff lists them)\n" in summary.out

    listed = vk(capsys, "deploy", project, "--env", env, "--check", "--diff")
    assert "  + tinyweb 1.0.0\n" in listed.out and "--diff lists them" not in listed.out
    as_json = vk(capsys, "deploy", project, "--env", env, "--check", "--diff", "--json").json
    assert "tinyweb==1.0.0\n" in as_json["diff"]["after"] and as_json["diff"]["before"] == ""
    assert not os.path.lexists(env) and not os.path.lexists(tmp_path / ".venv.venvkeeper")

    vk(capsys, "deploy", project, "--env", env)
    unchanged = vk(capsys, "deploy", project, "--env", env, "--check")
    assert unchanged.code == 0
    assert unchanged.out.startswith(f"{env} would not change (generation 1): nothing changed")
    assert generations(env) == ["0001", "0001.json"]


def test_check_refuses_what_the_deploy_refuses(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    env = tmp_path / ".venv"
    vk(capsys, "deploy", project, "--env", env)
    _set_webapp_dependencies(project, '"core", "tinyweb"')  # the lock no longer matches
    commit_all(project, "stale lock")

    before = _untouched(env, project)
    checked = vk(capsys, "deploy", project, "--env", env, "--check")
    assert _untouched(env, project) == before
    real = vk(capsys, "deploy", project, "--env", env)
    assert (checked.code, real.code) == (2, 2)
    assert checked.error_line == real.error_line
    assert "uv.lock" in checked.error_line

    # --env that is no venv: the deploy's own refusal, and nothing created.
    other = tmp_path / "notes"
    other.mkdir()
    (other / "readme.txt").write_text("mine")
    refused = vk(capsys, "deploy", project, "--env", other, "--check")
    assert refused.code == 2 and "is not a virtual environment venvkeeper can adopt" in refused.error_line
    assert not (tmp_path / "notes.venvkeeper").exists()


def _paired_install(
    capsys: pytest.CaptureFixture[str], bundle: Path, env: Path, *args: str | Path
) -> tuple[Outcome, Outcome]:
    """``install --check`` then the real install: nothing written, and the plan is what it did."""
    before = _untouched(env, bundle.parent / "no-project")
    checked = vk(capsys, "install", bundle, "--env", env, *args, "--check", "--json")
    assert _untouched(env, bundle.parent / "no-project") == before, "install --check wrote something"
    done = vk(capsys, "install", bundle, "--env", env, *args, "--json")
    assert done.code == 0, done.err
    plan, real = checked.json, done.json
    assert checked.code == (WOULD_CHANGE if real["changed"] else 0), checked.out
    assert (plan["check"], plan["changed"]) == (True, real["changed"])
    assert _package_names(plan) == _package_names(real)
    assert [h["command"] for h in plan["hooks"]] == [h["command"] for h in real["hooks"]]
    return checked, done


def test_install_check_equals_the_next_install(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    project = make_project("single")
    marker = tmp_path / "migrated"
    _with_hook(project, marker)
    (tmp_path / "keys").mkdir()
    key = tmp_path / "keys" / "signing"
    assert vk(capsys, "keygen", key).code == 0
    first = tmp_path / "app-1.tar.gz"
    assert vk(capsys, "pack", project, "-o", first, "--sign", key).code == 0
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    env = tmp_path / "srv" / ".venv"
    signed = ("--public-key", f"{key}.pub", "--hooks-dir", checkout)

    fresh, _ = _paired_install(capsys, first, env, *signed)
    assert fresh.json["hooks"] == [{"command": f"echo ran >> {marker}"}]
    assert ("tinyutil", "", "1.1.0") in _package_names(fresh.json)["added"]
    again, _ = _paired_install(capsys, first, env, *signed)
    assert again.code == 0 and again.json["reason"] == "this bundle is already the live generation"

    publish("tinyutil", "1.2.0")
    _bump_lock(project, "--upgrade-package", "tinyutil")
    second = tmp_path / "app-2.tar.gz"
    assert vk(capsys, "pack", project, "-o", second, "--sign", key).code == 0
    bumped, _ = _paired_install(capsys, second, env, *signed)
    assert _package_names(bumped.json)["changed"] == [("tinyutil", "1.1.0", "1.2.0")]

    # A bundle the key did not sign: refused by the check as by the install, nothing written.
    other_key = tmp_path / "keys" / "other"
    assert vk(capsys, "keygen", other_key).code == 0
    before = _untouched(env, tmp_path / "no-project")
    forged = vk(capsys, "install", second, "--env", env, "--public-key", f"{other_key}.pub", "--check")
    assert forged.code == 2, forged.out
    assert "signature" in forged.error_line
    assert _untouched(env, tmp_path / "no-project") == before

    # In place (a container layer): the plan of converging --env itself.
    layer = tmp_path / "layer" / "venv"
    _paired_install(capsys, first, layer, "--in-place", "--public-key", f"{key}.pub")
    text = vk(
        capsys,
        "install",
        second,
        "--env",
        layer,
        "--in-place",
        "--public-key",
        f"{key}.pub",
        "--check",
        "--diff",
    )
    assert text.code == WOULD_CHANGE
    assert "  ~ tinyutil 1.1.0 -> 1.2.0\n" in text.out


def test_check_of_a_member_whose_version_is_dynamic(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """uv.lock holds no version for it (nor for its path dependency): the check reads it from the
    wheel, as built."""
    project = make_project("dynversion")
    env = tmp_path / ".venv"
    first, _ = _paired(capsys, project, env)
    added = {e["name"]: e["new"] for e in first.json["added"]}
    assert (added["dynversion"], added["helper"]) == ("0.27.1", "3.1.4")  # neither is in uv.lock

    init = project / "src" / "dynversion" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9', 1))
    commit_all(project, "a new version, in the module")
    bumped, _ = _paired(capsys, project, env)
    [(name, old, new)] = _package_names(bumped.json)["changed"]
    assert (name, new) == ("dynversion", "9" + old)


def _git_dependency(tmp_path: Path) -> Path:
    repo = tmp_path / "gitdep"
    (repo / "src" / "gitdep").mkdir(parents=True)
    (repo / "src" / "gitdep" / "__init__.py").write_text("X = 1\n")
    (repo / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=70"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "gitdep"\nversion = "1.0.0"\nrequires-python = ">=3.11"\n'
    )
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commit_all(repo, "init")
    return repo


def test_check_of_git_and_marked_path_dependencies(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A git dependency's export line has no == pin (the lock has its version); a path dependency's
    marker is evaluated like any other."""
    repo = _git_dependency(tmp_path)
    project = make_project("single")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'dependencies = ["tinyutil"]', f'dependencies = ["tinyutil", "gitdep @ git+file://{repo}"]'
        )
    )
    _bump_lock(project)
    env = tmp_path / ".venv"
    first, _ = _paired(capsys, project, env)
    assert ("gitdep", "", "1.0.0") in _package_names(first.json)["added"]
    init = project / "src" / "single" / "__init__.py"
    init.write_text(init.read_text() + "\n# edited\n")
    commit_all(project, "edit")
    edited, _ = _paired(capsys, project, env)
    assert _package_names(edited.json)["removed"] == []

    marked = make_project("dynversion")
    pyproject = marked / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"helper"]', "\"helper; sys_platform == 'win32'\"]"))
    _bump_lock(marked)
    only, _ = _paired(capsys, marked, tmp_path / "marked")
    assert "helper" not in {e["name"] for e in only.json["added"]}


def test_check_in_place_over_a_venv_made_by_python(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m venv` seeds pip (and setuptools on older Pythons): uv's sync keeps them in place."""
    project = make_project("workspace")
    plain = tmp_path / "image" / "venv"
    subprocess.run(["python3", "-m", "venv", str(plain)], check=True)
    checked, _ = _paired(capsys, project, plain, "--in-place")
    assert not any(e["name"] == "pip" for e in checked.json["removed"])


def test_check_from_another_checkout_says_what_the_deploy_records(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = make_project("updatable")
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", first, "--env", env).code == 0
    second = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(first), str(second)], check=True)
    checked, done = _paired(capsys, second, env)
    assert checked.code == 0
    assert checked.json["reason"].endswith(f"; a deploy would record {second} as its source (was {first})")
    assert done.json["reason"].endswith(f"; now recorded as deployed from {second} (was {first})")
