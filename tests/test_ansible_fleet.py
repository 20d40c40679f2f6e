"""The fleet playbook (examples/ansible/fleet.yml) run by ansible-core against three real hosts.

``localhost`` (Ansible's local connection) and two hosts reached over real SSH: Debian's sshd on
127.0.0.1, one per host on a port of its own (support.sshd). They share this filesystem, so each
host has directories of its own (``venvkeeper_root``), and each install runs with an index that
refuses connections: what they install comes from the bundle alone. The project is the ``fleet``
fixture on the hermetic index; the controller packs and signs it once.

ansible-core comes from PyPI, through support.ansible (pinned, one venv per version kept outside the
repository), and reports through its json_report stdout callback. The assertions read that JSON
and the files the hosts are left with.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.ansible import AnsibleCore, PlayOutcome, controller_python, ensure_ansible_core
from support.process import run
from support.projects import git_commit_all
from support.sshd import SshFleet, ssh_fleet, sshd_missing, write_inventory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "examples" / "ansible" / "fleet.yml"
VENVKEEPER = Path(sys.executable).parent / "venvkeeper"
SSH_HOSTS = ("web1", "web2")
HOSTS = ("localhost", *SSH_HOSTS)
# The discard port: a connection is refused at once, so any attempt to reach an index fails.
DEAD_INDEX = "http://127.0.0.1:9/simple"


@pytest.fixture(scope="module")
def core() -> AnsibleCore:
    python = controller_python() or pytest.skip("no CPython 3.12-3.14 for ansible-core's controller")
    return ensure_ansible_core(python)


@pytest.fixture
def ssh_hosts(tmp_path: Path) -> Iterator[SshFleet]:
    reason = sshd_missing()
    if reason is not None:
        pytest.skip(f"the fleet test needs real SSH hosts: {reason}")
    with ssh_fleet(tmp_path / "ssh", SSH_HOSTS) as fleet:
        yield fleet


@dataclass
class Fleet:
    """The playbook's world: the inventory, the controller's variables, and how to run it."""

    tmp: Path
    ssh: SshFleet
    core: AnsibleCore
    project: Path

    def root(self, host: str) -> Path:
        return self.tmp / "hosts" / host

    def env(self, host: str) -> Path:
        return self.root(host) / ".venv"

    def host_vars(self, host: str, *, failing: bool) -> dict[str, Any]:
        root = self.root(host)
        environment = {
            # A home and a uv cache of the host's own; no index it could reach.
            "HOME": str(root / "home"),
            "XDG_CACHE_HOME": str(root / "home" / ".cache"),
            "UV_CACHE_DIR": str(root / "uv-cache"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_INDEX_URL": DEAD_INDEX,
            "UV_DEFAULT_INDEX": DEAD_INDEX,
            "PIP_INDEX_URL": DEAD_INDEX,
        }
        if failing:
            environment["FLEET_HOOK_FAIL"] = "1"  # read by the project's hooks/post_deploy.py
        connection = (
            {"ansible_connection": "local", "ansible_python_interpreter": os.path.realpath(sys.executable)}
            if host == "localhost"
            else self.ssh.host_vars(self.ssh.servers[SSH_HOSTS.index(host)])
        )
        return {
            **connection,
            "ansible_remote_tmp": str(root / "ansible-tmp"),
            "venvkeeper_root": str(root),
            "venvkeeper_executable": str(VENVKEEPER),
            "venvkeeper_environment": environment,
        }

    def play(self, *args: str, failing: tuple[str, ...] = ()) -> PlayOutcome:
        """Run the playbook against the three hosts, ``failing`` ones with FLEET_HOOK_FAIL=1."""
        inventory = write_inventory(
            self.tmp / "inventory.json",
            {"fleet": {host: self.host_vars(host, failing=host in failing) for host in HOSTS}},
        )
        controller = self.tmp / "controller.json"
        controller.write_text(
            json.dumps(
                {
                    "venvkeeper_project": str(self.project),
                    "venvkeeper_build_dir": str(self.tmp / "build"),
                    "venvkeeper_controller_executable": str(VENVKEEPER),
                }
            )
        )
        # A short directory for ssh's control sockets: a unix socket's path has at most 107 bytes.
        with tempfile.TemporaryDirectory(prefix="vk-cp-", dir="/tmp") as control:
            environ = dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=control)
            return self.core.playbook(
                PLAYBOOK, "-i", str(inventory), "-e", f"@{controller}", *args, environ=environ, cwd=self.tmp
            )


@pytest.fixture
def fleet(core: AnsibleCore, ssh_hosts: SshFleet, make_project: Callable[..., Path], tmp_path: Path) -> Fleet:
    return Fleet(tmp_path, ssh_hosts, core, make_project("fleet"))


def results(outcome: PlayOutcome, task: str) -> dict[str, dict[str, Any]]:
    """Each host's result of the task named ``task``, in whichever play (or batch) it ran."""
    found: dict[str, dict[str, Any]] = {}
    for play in outcome.report["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                found.update(entry["hosts"])
    return found


def explain(outcome: PlayOutcome) -> str:
    """What went wrong in a run, for an assertion's message: the stats and every failed result."""
    failed = [
        f"{entry['task']['name']} on {host}: {result.get('msg')}\n{result.get('stderr', '')}"
        for play in outcome.report["plays"]
        for entry in play["tasks"]
        for host, result in entry["hosts"].items()
        if result.get("failed")
    ]
    return "\n".join([json.dumps(outcome.stats), *failed, outcome.stderr])


def live(fleet: Fleet, host: str) -> str:
    return os.readlink(fleet.env(host))


def hook_log(fleet: Fleet, host: str) -> list[str]:
    path = fleet.root(host) / "hook.log"
    return path.read_text().splitlines() if path.exists() else []


def verify(fleet: Fleet, host: str) -> dict[str, Any]:
    proc = run([VENVKEEPER, "verify", "--env", fleet.env(host), "--json"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_fleet_playbook_ships_one_signed_bundle_and_a_failing_host_rolls_back_alone(fleet: Fleet) -> None:
    # 1. First rollout: every host installs generation 1 from the one bundle, and its hook runs.
    first = fleet.play()
    assert first.code == 0, explain(first)
    packed = results(first, "Pack and sign the bundle")
    assert list(packed) == ["localhost"]  # once, on the controller
    pack = json.loads(packed["localhost"]["stdout"])
    assert pack["signed"] is True
    installed = results(first, "Install the bundle offline")
    assert sorted(installed) == sorted(HOSTS)
    for host in HOSTS:
        assert installed[host]["changed"] is True, installed[host]
        assert installed[host]["generation"] == 1
        assert first.stats[host]["failures"] == 0
        assert live(fleet, host) == ".venv.venvkeeper/generations/0001"
        bundle = fleet.root(host) / "releases" / "fleet.tar.gz"
        assert sha256(bundle) == pack["sha256"]
        assert verify(fleet, host)["generation"] == 1
        (logged,) = hook_log(fleet, host)
        assert logged.startswith("generation 1 release 1 cwd ")
        assert Path(logged.split(" cwd ", 1)[1]).parent == fleet.root(host) / "releases"
    verified = results(first, "Verify every file of the live generation")
    assert all(verified[host]["clean"] is True for host in HOSTS)
    for server in fleet.ssh.servers:  # the two hosts were reached over SSH, not locally
        assert f"Accepted publickey for {server.user}" in server.log_path.read_text()

    # 2. The same release again: nothing changes anywhere.
    second = fleet.play()
    assert second.code == 0, explain(second)
    assert {host: second.stats[host]["changed"] for host in HOSTS} == dict.fromkeys(HOSTS, 0)
    assert all(
        result["changed"] is False for result in results(second, "Install the bundle offline").values()
    )
    assert all(len(hook_log(fleet, host)) == 1 for host in HOSTS)

    # 3. A new release, first in check mode: every host would change, and none does.
    source = fleet.project / "src" / "fleetsite" / "__init__.py"
    source.write_text(source.read_text().replace('RELEASE = "1"', 'RELEASE = "2"'))
    git_commit_all(fleet.project, "Release 2")
    checked = fleet.play("--check")
    assert checked.code == 0, explain(checked)
    would = results(checked, "Install the bundle offline")
    assert {host: (would[host]["changed"], would[host]["check"]) for host in HOSTS} == dict.fromkeys(
        HOSTS, (True, True)
    )
    report = [item["msg"] for item in results(checked, "Each host's outcome")["localhost"]["results"]]
    assert report == [
        f"{host}: would install a new generation (live now: 1), verified clean" for host in HOSTS
    ]
    for host in HOSTS:
        assert live(fleet, host) == ".venv.venvkeeper/generations/0001"
        assert not (fleet.root(host) / ".venv.venvkeeper" / "generations" / "0002").exists()
        assert len(hook_log(fleet, host)) == 1

    # 4. That release for real, its post-deploy hook failing on web1 only: web1 rolls back alone.
    third = fleet.play(failing=("web1",))
    assert third.code == 2, explain(third)
    assert live(fleet, "web1") == ".venv.venvkeeper/generations/0001"
    assert verify(fleet, "web1")["generation"] == 1
    assert len(hook_log(fleet, "web1")) == 1  # its hook failed before logging release 2
    for host in ("localhost", "web2"):  # web2 is in the batch after web1's: the rollout went on
        assert live(fleet, host) == ".venv.venvkeeper/generations/0002"
        assert verify(fleet, host)["generation"] == 2
        assert hook_log(fleet, host)[-1].startswith("generation 2 release 2 ")
        assert third.stats[host]["failures"] == 0
    assert third.stats["web1"]["failures"] == 1
    assert third.stats["web1"]["rescued"] == 1
    install = results(third, "Install the bundle offline")["web1"]
    assert install["rc"] == 4
    assert install["rolled_back"] is True
    stop = results(third, "Stop this host")
    assert list(stop) == ["web1"]
    assert stop["web1"]["msg"].startswith("web1: ROLLED BACK: ")
    assert "FLEET_HOOK_FAIL" in install["hooks"][-1]["output_tail"]
    report = [item["msg"] for item in results(third, "Each host's outcome")["localhost"]["results"]]
    assert report[0] == "localhost: installed generation 2, verified clean"
    assert report[1].startswith("web1: ROLLED BACK: ")
    assert report[2] == "web2: installed generation 2, verified clean"
