"""The collection's modules in real plays on ``localhost`` (issue 15): ansible-playbook from the
registry's ansible-core drives the venvkeeper CLI of this checkout against the hermetic index.

What is asserted is what the play reports (the json stdout callback) and what is on disk.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.ansible import AnsibleCore, PlayOutcome, controller_python, ensure_ansible_core
from support.process import run
from vk import commit_all, site_packages, snapshot, vk_process

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VENVKEEPER = Path(sys.executable).parent / "venvkeeper"


@pytest.fixture(scope="module")
def core() -> AnsibleCore:
    python = controller_python() or pytest.skip("no CPython 3.12-3.14 for ansible-core's controller")
    return ensure_ansible_core(python)


class Plays:
    """Write a one-play playbook on localhost and run it with ansible-playbook."""

    def __init__(self, core: AnsibleCore, workdir: Path) -> None:
        self.core = core
        self.workdir = workdir
        self.count = 0
        workdir.mkdir(parents=True, exist_ok=True)
        self.inventory = workdir / "inventory.ini"
        self.inventory.write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={core.python}\n"
        )

    def __call__(self, tasks: list[dict[str, Any]], *args: str) -> PlayOutcome:
        self.count += 1
        playbook = self.workdir / f"play{self.count}.yml"
        # JSON is YAML: the playbook exactly as the test builds it.
        play = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
        playbook.write_text(json.dumps([play], indent=2))
        # The modules find `venvkeeper` on PATH by default, as they would on a host.
        environ = dict(os.environ, PATH=f"{VENVKEEPER.parent}:{os.environ['PATH']}")
        return self.core.playbook(
            playbook, "-i", str(self.inventory), *args, environ=environ, cwd=self.workdir
        )


def _task(name: str, module: str, ignore_errors: bool = False, **args: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"name": name, f"venvkeeper.venvkeeper.{module}": args}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


def _live(env: Path) -> int:
    """The live generation's number, from the --env symlink itself."""
    return int(Path(os.readlink(env)).name)


def _relock_newer_tinyutil(project: Path, publish: Callable[..., Path]) -> None:
    publish("tinyutil", "1.2.0")
    run([Path(sys.executable).parent / "uv", "lock", "--upgrade-package", "tinyutil"], cwd=project)
    commit_all(project, "tinyutil 1.2.0")


def test_deploy_is_idempotent_exact_in_check_mode_and_rolls_back(
    core: AnsibleCore, make_project: Callable[..., Path], publish: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project("depsonly")
    env = tmp_path / "srv" / ".venv"
    play = Plays(core, tmp_path / "play")
    deploy = _task("deploy", "deploy", project=str(project), env=str(env), keep=5)

    first = play([deploy])
    again = play([deploy])

    assert first.code == 0, first.report
    done = first.result("deploy")
    assert (done["changed"], done["generation"], done["exit_code"]) == (True, 1, 0)
    assert {"name": "tinyutil", "old": "", "new": "1.1.0"} in done["packages"]["added"]
    assert done["cmd"][0] == str(VENVKEEPER)  # found on PATH
    assert again.code == 0
    assert (again.result("deploy")["changed"], again.result("deploy")["generation"]) == (False, 1)
    assert again.stats["localhost"]["changed"] == 0

    # Check mode predicts the change exactly (exit 6 of `deploy --check`) and writes nothing.
    _relock_newer_tinyutil(project, publish)
    before = snapshot(env.parent)
    predicted = play([deploy], "--check", "--diff")
    assert predicted.code == 0, predicted.result("deploy")
    plan = predicted.result("deploy")
    assert (plan["changed"], plan["check"], plan["exit_code"], plan["generation"]) == (True, True, 6, 1)
    assert plan["diff"]["before"] == "tinyutil==1.1.0\n"
    assert plan["diff"]["after"] == "tinyutil==1.2.0\n"
    assert snapshot(env.parent) == before
    assert _live(env) == 1

    # The real deploy does what was predicted; diff mode shows the same package lines.
    real = play([deploy], "--diff")
    assert real.code == 0, real.report
    done = real.result("deploy")
    assert (done["changed"], done["check"], done["generation"], done["previous"]) == (True, False, 2, 1)
    assert (done["diff"]["before"], done["diff"]["after"]) == (plan["diff"]["before"], plan["diff"]["after"])
    assert done["packages"] == plan["packages"]
    assert _live(env) == 2
    settled = play([deploy], "--check")
    assert (settled.result("deploy")["changed"], settled.result("deploy")["exit_code"]) == (False, 0)

    # rollback: check mode names the target and switches nothing; with `to` it is idempotent.
    rollback = _task("rollback", "rollback", env=str(env), to=1, executable=str(VENVKEEPER))
    one_back = _task("one back", "rollback", env=str(env))
    would = play([rollback, one_back], "--check")
    assert would.code == 0, would.report
    for task in ("rollback", "one back"):
        assert {k: would.result(task)[k] for k in ("changed", "generation", "previous")} == {
            "changed": True,
            "generation": 1,
            "previous": 2,
        }
    assert _live(env) == 2
    back = play([rollback], "--diff")
    assert back.code == 0, back.report
    assert (back.result("rollback")["changed"], back.result("rollback")["generation"]) == (True, 1)
    assert back.result("rollback")["diff"]["after"] == "tinyutil==1.1.0\n"
    assert _live(env) == 1
    stays = play([rollback], "--check")
    stays_real = play([rollback])
    assert stays.result("rollback")["changed"] is False
    assert stays_real.result("rollback")["changed"] is False
    assert _live(env) == 1


def test_a_failing_hook_fails_the_task_and_the_host_rolls_back(
    core: AnsibleCore, make_project: Callable[..., Path], publish: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project("depsonly")
    env = tmp_path / "srv" / ".venv"
    play = Plays(core, tmp_path / "play")
    deploy = _task("deploy", "deploy", ignore_errors=True, project=str(project), env=str(env))
    assert play([deploy]).result("deploy")["changed"] is True
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.venvkeeper.hooks]\npost-deploy = ['exit 3']\n")
    commit_all(project, "a failing hook")
    _relock_newer_tinyutil(project, publish)  # a change, so that the hook runs

    failed = play([deploy])

    result = failed.result("deploy")
    assert result.get("failed") is True, result
    assert result["rc"] == 4
    assert result["rolled_back"] is True
    assert result["msg"].startswith("venvkeeper deploy: a post-deploy hook failed and the host rolled back: ")
    assert "switched back to generation 1" in result["msg"]
    assert [hook["exit_code"] for hook in result["hooks"]] == [3]
    assert "\n" not in result["msg"]
    assert _live(env) == 1

    # no_hooks: the same change goes live and the hook does not run.
    skipped = play(
        [
            {
                **deploy,
                "venvkeeper.venvkeeper.deploy": {**deploy["venvkeeper.venvkeeper.deploy"], "no_hooks": True},
            }
        ]
    )
    result = skipped.result("deploy")
    assert skipped.code == 0, result
    assert (result["changed"], result["hooks"]) == (True, [])
    assert "post-deploy hooks skipped (--no-hooks)" in result["reason"]
    assert _live(env) == result["generation"] > 1


def test_install_a_signed_bundle_then_verify_returns_facts(
    core: AnsibleCore, make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project("depsonly")
    keys = tmp_path / "keys"
    keys.mkdir()
    assert vk_process("keygen", keys / "release").code == 0
    assert vk_process("keygen", keys / "other").code == 0
    bundle = tmp_path / "app.tar.gz"
    packed = vk_process("pack", project, "-o", bundle, "--sign", keys / "release")
    assert packed.code == 0, packed.err
    env = tmp_path / "srv" / ".venv"
    play = Plays(core, tmp_path / "play")

    def install(key: str, name: str = "install") -> dict[str, Any]:
        return _task(name, "install", ignore_errors=True, bundle=str(bundle), env=str(env), public_key=key)

    # The wrong key: the task fails with the CLI's one error line, and nothing is installed.
    refused = play([install(str(keys / "other.pub"))]).result("install")
    assert refused["failed"] is True
    assert refused["rc"] == 2
    assert refused["msg"].startswith("venvkeeper install: ")
    assert "(hint: " in refused["msg"]
    assert not env.parent.exists()

    predicted = play([install(str(keys / "release.pub"))], "--check", "--diff").result("install")
    assert (predicted["changed"], predicted["exit_code"]) == (True, 6)
    assert predicted["diff"]["after"] == "tinyutil==1.1.0\n"
    assert not env.parent.exists()

    right = install(str(keys / "release.pub"))
    twice = play([right, {**right, "name": "install again"}])
    assert twice.code == 0, twice.report
    assert (twice.result("install")["changed"], twice.result("install")["generation"]) == (True, 1)
    assert twice.result("install again")["changed"] is False
    assert (site_packages(env) / "tinyutil").is_dir()

    verify = _task("verify", "verify", ignore_errors=True, env=str(env))
    lenient = _task("verify, findings allowed", "verify", env=str(env), fail_on_findings=False)
    facts = {"name": "facts", "ansible.builtin.debug": {"var": "venvkeeper_verify"}}
    clean = play([verify, facts], "--check")
    assert clean.code == 0, clean.report
    assert clean.result("verify")["changed"] is False
    assert clean.result("verify")["ansible_facts"]["venvkeeper_verify"]["clean"] is True
    assert clean.result("facts")["venvkeeper_verify"]["generation"] == 1

    tampered = next((site_packages(env) / "tinyutil").glob("*.py"))
    edited = tampered.read_text() + "\n# edited on the host\n"
    tampered.unlink()  # a hard link into the session's uv cache: written in place, it would damage that too
    tampered.write_text(edited)
    dirty = play([verify, lenient, facts])
    strict = dirty.result("verify")
    assert strict["failed"] is True
    assert "venvkeeper verify: " in strict["msg"]
    assert "1 finding(s)" in strict["msg"]
    assert "tinyutil" in strict["msg"]
    allowed = dirty.result("verify, findings allowed")
    assert allowed.get("failed") is not True, {k: v for k, v in allowed.items() if k != "ansible_facts"}
    assert allowed["clean"] is False
    assert [f["distribution"] for f in allowed["findings"]] == ["tinyutil"]
    assert dirty.result("facts")["venvkeeper_verify"]["clean"] is False


_FAKE_CLI = """\
#!{python}
# Stands in for venvkeeper: records its argv, answers what the module reads.
import json, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
command = sys.argv[1]
if command == "status":
    print(json.dumps({{"env": "e", "current": 2, "generations": [{{"number": 1}}, {{"number": 2}}]}}))
elif command == "verify":
    print(json.dumps({{"env": "e", "clean": True, "generation": 2, "findings": []}}))
elif command == "rollback":
    print(json.dumps({{"env": "e", "generation": 1, "previous": 2, "packages": {{}}}}))
elif "--check" in sys.argv:
    print(json.dumps({{"env": "e", "changed": True, "generation": 2, "packages": {packages!r}}}))
    sys.exit(6)
else:
    print(json.dumps({{"env": "e", "changed": False, "generation": 2}}))
"""
# What a check answers in the stand-in: several packages of each kind, out of order.
_PACKAGES = {
    "added": [{"name": "zeta", "old": "", "new": "1.0"}, {"name": "alpha", "old": "", "new": "2.0"}],
    "removed": [{"name": "mid", "old": "3.0", "new": ""}],
    "changed": [{"name": "beta", "old": "1.0", "new": "1.1"}],
}


def _fake_cli(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for venvkeeper that records each argv (one JSON list a line) in the log it returns."""
    log = tmp_path / "argv.jsonl"
    fake = tmp_path / "fake-venvkeeper"
    fake.write_text(_FAKE_CLI.format(python=sys.executable, log=str(log), packages=_PACKAGES))
    fake.chmod(0o755)
    return fake, log


def test_every_option_reaches_the_cli_as_its_long_option(core: AnsibleCore, tmp_path: Path) -> None:
    fake, log = _fake_cli(tmp_path)
    common = {"executable": str(fake), "env": "/srv/app/.venv"}
    tasks = [
        _task(
            "deploy",
            "deploy",
            project="/srv/app/src",
            python="3.12",
            groups=["docs", "tests"],
            keep=0,
            no_hooks=True,
            in_place=True,
            **common,
        ),
        _task(
            "install",
            "install",
            bundle="/tmp/app.tar.gz",
            public_key="/etc/k.pub",
            python="3.12",
            keep=2,
            in_place=True,
            hooks_dir="/srv/app/src",
            no_hooks=True,
            **common,
        ),
        _task("verify", "verify", project="/srv/app/src", fast=True, **common),
        _task("rollback", "rollback", to=1, **common),
        _task("deploy, defaults", "deploy", project="/srv/app/src", **common),
    ]

    outcome = Plays(core, tmp_path / "play")(tasks)

    assert outcome.code == 0, outcome.report
    argvs = [json.loads(line) for line in log.read_text().splitlines()]
    assert argvs == [
        [
            "deploy",
            "--project",
            "/srv/app/src",
            "--env",
            "/srv/app/.venv",
            "--python",
            "3.12",
            "--group",
            "docs",
            "--group",
            "tests",
            "--keep",
            "0",
            "--no-hooks",
            "--in-place",
            "--json",
        ],
        [
            "install",
            "/tmp/app.tar.gz",
            "--env",
            "/srv/app/.venv",
            "--public-key",
            "/etc/k.pub",
            "--python",
            "3.12",
            "--keep",
            "2",
            "--in-place",
            "--hooks-dir",
            "/srv/app/src",
            "--no-hooks",
            "--json",
        ],
        ["verify", "--env", "/srv/app/.venv", "--project", "/srv/app/src", "--fast", "--json"],
        ["status", "--env", "/srv/app/.venv", "--json"],
        ["rollback", "--env", "/srv/app/.venv", "--to", "1", "--json"],
        ["deploy", "--project", "/srv/app/src", "--env", "/srv/app/.venv", "--json"],
    ]
    # ... and each of those options is one the real CLI has.
    for argv in argvs:
        help_text = run([VENVKEEPER, argv[0], "--help"]).stdout
        for option in (arg for arg in argv if arg.startswith("--")):
            assert f"{option} " in help_text or f"{option}\n" in help_text, (argv[0], option)


def test_the_diff_is_sorted_lines_and_rollback_check_mode_refuses_what_is_not_kept(
    core: AnsibleCore, tmp_path: Path
) -> None:
    fake, log = _fake_cli(tmp_path)
    common = {"executable": str(fake), "env": "/srv/app/.venv"}
    deploy = _task("deploy", "deploy", project="/srv/app/src", **common)
    rollback = _task("rollback to 7", "rollback", ignore_errors=True, to=7, **common)

    outcome = Plays(core, tmp_path / "play")([deploy, rollback], "--check", "--diff")

    planned = outcome.result("deploy")
    assert "exit_code" in planned, planned
    assert (planned["changed"], planned["exit_code"], planned["check"]) == (True, 6, True)
    assert planned["diff"]["before"] == "beta==1.0\nmid==3.0\n"
    assert planned["diff"]["after"] == "alpha==2.0\nbeta==1.1\nzeta==1.0\n"
    refused = outcome.result("rollback to 7")
    assert refused["failed"] is True
    assert refused["msg"] == "venvkeeper rollback: e: generation 7 is not kept (kept: 1, 2)"
    # Check mode ran status only: no rollback was attempted.
    assert [json.loads(line)[0] for line in log.read_text().splitlines()] == ["deploy", "status"]
