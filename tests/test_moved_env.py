"""Moved deployed environments: ``mv`` of the directory holding --env, its state and its generations.

The symlink is relative, so --env still leads to the live generation; but uv wrote the generation's
absolute path into every console script's ``#!`` line and into ``bin/activate``, so the scripts exit
127. doctor and verify must say so, heal must repair it (with a new generation: a sealed generation
is never edited in place), and deploy must notice it on its own and build a new generation.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vk import Outcome, generations, leftovers, vk

FAST = "(file metadata unchanged)"


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("workspace")


def _script(env: Path, name: str = "webapp") -> subprocess.CompletedProcess[str]:
    """A console script run by a shell, as a service or cron would: 127 when its interpreter is gone."""
    return subprocess.run(
        ["sh", "-c", '"$0"', str(env / "bin" / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _assert_runs(env: Path) -> None:
    ran = _script(env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("webapp 0.1.0 (core 0.1.0, tinyweb 1.0.0, tinydb 1.2.0)")


def _deploy_and_move(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path: Path, *args: str
) -> tuple[Path, Path]:
    """Deploy to tmp_path/srv/.venv, check it runs, ``mv srv srv2``: (old env, new env)."""
    env = tmp_path / "srv" / ".venv"
    first = vk(capsys, "deploy", project, "--env", env, "--json", *args)
    assert first.code == 0, first.out + first.err
    _assert_runs(env)
    (tmp_path / "srv").rename(tmp_path / "srv2")
    return env, tmp_path / "srv2" / ".venv"


def _verify(capsys: pytest.CaptureFixture[str], env: Path) -> Outcome:
    return vk(capsys, "verify", "--env", env, "--json")


def _moved_finding(outcome: Outcome) -> dict[str, Any]:
    (found,) = [f for f in outcome.json["findings"] if f["category"] == "moved"]
    return found


def test_a_moved_deployed_environment_is_reported_and_healed_with_a_new_generation(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, env = _deploy_and_move(capsys, project, tmp_path)
    old_gen = f"{old.parent}/.venv.venvkeeper/generations/0001"
    new_gen = f"{env.parent}/.venv.venvkeeper/generations/0001"

    assert _script(env).returncode == 127

    doctor = vk(capsys, "doctor", "--env", env, "--json")
    assert doctor.code == 1, doctor.out + doctor.err
    stale = {f["path"]: f for f in doctor.json["findings"] if f["code"] == "stale-shebang"}
    assert set(stale) == {"bin/webapp", "bin/tinyweb"}
    assert old_gen in stale["bin/webapp"]["seen"]
    assert "new generation" in stale["bin/webapp"]["repair"]

    verify = _verify(capsys, env)
    assert verify.code == 1, verify.out + verify.err
    assert verify.json["clean"] is False
    moved = _moved_finding(verify)
    assert (moved["expected"], moved["actual"]) == (f"built at {old_gen}", f"now at {new_gen}")
    named = {f["path"] for f in moved["files"]}
    assert {"bin/webapp", "bin/tinyweb", "bin/activate"} <= named
    assert {c["check"]: c["status"] for c in verify.json["checks"]}["location"] == "findings"
    text = vk(capsys, "verify", "--env", env)
    assert text.code == 1
    assert "moved" in text.out and old_gen in text.out

    heal = vk(capsys, "heal", "--env", env, "--json")

    assert heal.code == 0, heal.out + heal.err
    assert heal.json["generation"] == 2
    assert [a["action"] for a in heal.json["actions"]] == ["redeploy"]
    outcomes = {(o["code"], o["path"]): o["outcome"] for o in heal.json["outcomes"]}
    assert outcomes[("stale-shebang", "bin/webapp")] == "repaired"
    assert set(outcomes.values()) == {"repaired"}
    _assert_runs(env)
    assert str(env.readlink()) == ".venv.venvkeeper/generations/0002"
    # Generation 1 is kept as it was sealed (for a rollback), not edited.
    gen1 = env.parent / ".venv.venvkeeper" / "generations" / "0001" / "bin" / "webapp"
    assert old_gen in gen1.read_text().splitlines()[0]
    after = _verify(capsys, env)
    assert after.code == 0, after.out + after.err
    assert after.json["clean"] is True
    assert "location" not in {c["check"] for c in after.json["checks"]}
    healthy = vk(capsys, "doctor", "--env", env, "--json")
    assert healthy.code == 0, healthy.out
    again = vk(capsys, "deploy", project, "--env", env, "--json")
    assert again.code == 0, again.out + again.err
    assert (again.json["changed"], again.json["generation"]) == (False, 2)
    assert leftovers(env) == []
    # Generation 1 cannot run here: rollback says so instead of switching to it.
    rollback = vk(capsys, "rollback", "--env", env)
    assert rollback.code == 2
    assert "built at" in rollback.error_line and "moved since" in rollback.error_line
    assert str(env.readlink()) == ".venv.venvkeeper/generations/0002"
    # A second heal has nothing to do.
    second = vk(capsys, "heal", "--env", env, "--json")
    assert (second.code, second.json["changed"]) == (0, False)
    assert generations(env) == ["0001", "0001.json", "0002", "0002.json"]


def test_deploy_alone_builds_a_new_generation_for_a_moved_environment(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, env = _deploy_and_move(capsys, project, tmp_path)

    result = vk(capsys, "deploy", project, "--env", env, "--json")

    assert result.code == 0, result.out + result.err
    assert (result.json["changed"], result.json["generation"], result.json["previous"]) == (True, 2, 1)
    assert f"built at {old.parent}/.venv.venvkeeper/generations/0001" in result.json["reason"]
    # Nothing in the lock or the members changed: the members come from the wheel cache.
    assert result.json["rebuilt"] == []
    assert result.json["packages"] == {"added": [], "removed": [], "changed": []}
    _assert_runs(env)
    assert _verify(capsys, env).code == 0
    record = json.loads((env.parent / ".venv.venvkeeper" / "generations" / "0002.json").read_text())
    assert record["directory"] == f"{env.parent}/.venv.venvkeeper/generations/0002"
    again = vk(capsys, "deploy", project, "--env", env)
    assert again.code == 0
    assert "is unchanged (generation 2)" in again.out


def test_the_no_op_stamp_does_not_answer_for_a_moved_environment(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    time.sleep(2.1)  # the stamp is written once the files are older than the racy window
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    assert FAST in vk(capsys, "deploy", project, "--env", env).out
    (tmp_path / "srv").rename(tmp_path / "srv2")
    moved = tmp_path / "srv2" / ".venv"

    there = vk(capsys, "deploy", project, "--env", moved)
    assert there.code == 0, there.err
    assert FAST not in there.out
    assert "generation 2" in there.out
    _assert_runs(moved)
    # And back: generation 2 was built at srv2, so at srv it has moved again.
    (tmp_path / "srv2").rename(tmp_path / "srv")
    time.sleep(2.1)
    back = vk(capsys, "deploy", project, "--env", env, "--json")
    assert back.code == 0, back.err
    assert (back.json["changed"], back.json["generation"]) == (True, 3)
    _assert_runs(env)


def test_a_generation_recorded_before_its_directory_was_is_still_seen_to_have_moved(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records written by an older venvkeeper have no ``directory``: the members' wheel paths tell."""
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    record_path = tmp_path / "srv" / ".venv.venvkeeper" / "generations" / "0001.json"
    record = json.loads(record_path.read_text())
    del record["directory"]
    record_path.write_text(json.dumps(record))
    assert vk(capsys, "deploy", project, "--env", env).out.count("is unchanged") == 1
    (tmp_path / "srv").rename(tmp_path / "srv2")
    moved = tmp_path / "srv2" / ".venv"

    expected = _moved_finding(_verify(capsys, moved))["expected"]
    assert expected == f"built at {tmp_path}/srv/.venv.venvkeeper/generations/0001"
    result = vk(capsys, "deploy", project, "--env", moved, "--json")
    assert (result.json["changed"], result.json["generation"]) == (True, 2)
    _assert_runs(moved)


def test_heal_of_a_moved_environment_says_why_when_the_lock_changed(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, env = _deploy_and_move(capsys, project, tmp_path)
    lock = project / "uv.lock"
    lock.write_bytes(lock.read_bytes() + b"\n")

    heal = vk(capsys, "heal", "--env", env, "--json")

    assert heal.code == 1, heal.out + heal.err
    reasons = {o["reason"] for o in heal.json["outcomes"] if o["code"] == "stale-shebang"}
    assert len(reasons) == 1
    (reason,) = reasons
    assert f"{project}/uv.lock changed" in reason
    assert f"venvkeeper deploy {project} --env {env}" in reason
    assert generations(env) == ["0001", "0001.json"]
    assert _script(env).returncode == 127


def test_a_moved_in_place_environment_is_converged_again(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, env = _deploy_and_move(capsys, project, tmp_path, "--in-place")
    assert _script(env).returncode == 127
    assert _moved_finding(_verify(capsys, env))["actual"] == f"now at {env}"

    heal = vk(capsys, "heal", "--env", env, "--json")

    assert heal.code == 0, heal.out + heal.err
    _assert_runs(env)
    assert _verify(capsys, env).code == 0
    assert vk(capsys, "doctor", "--env", env).code == 0
    again = vk(capsys, "deploy", project, "--env", env, "--in-place", "--json")
    assert again.json["changed"] is False


def test_heal_of_a_moved_environment_does_not_deploy_changed_code(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """heal rebuilds what was deployed; a member edited since is deploy's to bring, and heal says so."""
    _, env = _deploy_and_move(capsys, project, tmp_path)
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + "\n# edited after the deploy\n")

    heal = vk(capsys, "heal", "--env", env, "--json")

    assert heal.code == 1, heal.out + heal.err
    (reason,) = {o["reason"] for o in heal.json["outcomes"] if o["code"] == "stale-shebang"}
    assert reason.startswith(f"webapp in {project} changed since generation 1 was built")
    assert f"venvkeeper deploy {project} --env {env}" in reason
    assert generations(env) == ["0001", "0001.json"]
    # What it says to run does it.
    deployed = vk(capsys, "deploy", project, "--env", env, "--json")
    assert (deployed.code, deployed.json["generation"], deployed.json["rebuilt"]) == (0, 2, ["webapp"])
    _assert_runs(env)


def test_install_reinstalls_a_moved_bundle_generation(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = make_project("single")
    bundle = tmp_path / "app.tar.gz"
    assert vk(capsys, "pack", single, "-o", bundle).code == 0
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "install", bundle, "--env", env).code == 0
    (tmp_path / "srv").rename(tmp_path / "srv2")
    moved = tmp_path / "srv2" / ".venv"
    assert _moved_finding(_verify(capsys, moved))["expected"].startswith(f"built at {tmp_path}/srv/")
    heal = vk(capsys, "heal", "--env", moved, "--json")
    assert heal.code == 1
    (reason,) = {o["reason"] for o in heal.json["outcomes"] if o["code"] == "stale-shebang"}
    assert f"venvkeeper install {bundle} --env {moved}" in reason

    again = vk(capsys, "install", bundle, "--env", moved, "--json")

    assert again.code == 0, again.out + again.err
    assert (again.json["changed"], again.json["generation"]) == (True, 2)
    ran = _script(moved, "single")
    assert (ran.returncode, ran.stdout.strip()) == (0, "single 0.1.0 (tinyutil 1.1.0)"), ran.stderr
    assert _verify(capsys, moved).code == 0


def test_heal_finds_the_project_that_moved_along_with_the_environment(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``/srv/{workspace,.venv}`` moved as one: the recorded project is gone, its lock is beside --env."""
    srv = tmp_path / "srv"
    srv.mkdir()
    checkout = project.rename(srv / "workspace")
    env = srv / ".venv"
    assert vk(capsys, "deploy", checkout, "--env", env).code == 0
    srv.rename(tmp_path / "srv2")
    moved, moved_checkout = tmp_path / "srv2" / ".venv", tmp_path / "srv2" / "workspace"

    heal = vk(capsys, "heal", "--env", moved, "--json")

    assert heal.code == 0, heal.out + heal.err
    assert heal.json["actions"][0]["detail"].startswith(f"a new generation from {moved_checkout}")
    _assert_runs(moved)
    record = json.loads((moved.parent / ".venv.venvkeeper" / "generations" / "0002.json").read_text())
    assert record["project"] == str(moved_checkout)
    # With its lock changed, the checkout beside it is not the project the generation came from.
    lock = moved_checkout / "uv.lock"
    lock.write_bytes(lock.read_bytes() + b"\n")
    (tmp_path / "srv2").rename(tmp_path / "srv3")
    refused = vk(capsys, "heal", "--env", tmp_path / "srv3" / ".venv", "--json")
    assert refused.code == 1
    (reason,) = {o["reason"] for o in refused.json["outcomes"] if o["code"] == "stale-shebang"}
    assert f"deployed from {moved_checkout}, which has no uv.lock any more" in reason
