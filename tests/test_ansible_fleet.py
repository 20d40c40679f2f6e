"""The fleet playbook (examples/ansible/fleet.yml) run by ansible-core against three real hosts.

``localhost`` (Ansible's local connection) and two hosts reached over real SSH: Debian's sshd on
127.0.0.1, one per host on a port of its own (support.sshd). They share this filesystem, so each
host has directories of its own (``venvkeeper_root``), and each install runs with an index that
refuses connections: what they install comes from the bundle alone. The project is the ``fleet``
fixture on the hermetic index; the controller packs and signs it once.

ansible-core comes from PyPI, installed once per version into a venv kept outside the repository
(``<cache>/ansible/``, the e2e cache of support.corpus), with the ``ansible.posix`` collection for
its ``json`` stdout callback (from the ``ansible`` package's wheel: it is published nowhere else on
PyPI). The assertions read that JSON and the files the hosts are left with.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.corpus import cache_root
from support.process import run
from support.projects import git_commit_all
from support.sshd import SshFleet, ssh_fleet, sshd_missing, write_inventory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ANSIBLE_CORE = "2.19.14"
# The community package of that ansible-core line: only its ansible.posix collection is used.
ANSIBLE = "12.3.0"
ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "examples" / "ansible" / "fleet.yml"
VENVKEEPER = Path(sys.executable).parent / "venvkeeper"
SSH_HOSTS = ("web1", "web2")
HOSTS = ("localhost", *SSH_HOSTS)
# The discard port: a connection is refused at once, so any attempt to reach an index fails.
DEAD_INDEX = "http://127.0.0.1:9/simple"
# Read at import, before the hermetic fixture replaces the environment: pip reaches PyPI with the
# machine's own configuration, and the cache lives under the machine's HOME.
_MACHINE_ENVIRON = dict(os.environ)


def _pip_environ() -> dict[str, str]:
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")
    return {name: value for name, value in _MACHINE_ENVIRON.items() if name not in dropped}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One xdist worker (or pytest run) at a time builds a cache entry; the others wait for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _ansible_core(cache: Path) -> Path:
    """The venv of ansible-core ``ANSIBLE_CORE`` for this Python, made once (``ready`` marks it whole)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    venv = cache / f"ansible-core-{ANSIBLE_CORE}-py{version}"
    with _locked(cache / f"{venv.name}.lock"):
        if not (venv / "ready").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            run([sys.executable, "-m", "venv", venv], env=_pip_environ())
            pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", f"ansible-core=={ANSIBLE_CORE}"]
            run(pip, env=_pip_environ(), timeout=600)
            (venv / "ready").write_text(ANSIBLE_CORE + "\n")
    return venv / "bin"


def _posix_collection(cache: Path) -> Path:
    """A collections path holding ansible.posix, taken from the ``ansible`` package's wheel, once."""
    root = cache / f"ansible-posix-from-ansible-{ANSIBLE}"
    prefix = "ansible_collections/ansible/posix/"
    with _locked(cache / f"{root.name}.lock"):
        if not (root / "ready").is_file():
            shutil.rmtree(root, ignore_errors=True)
            download = root / "download"
            pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
            run([*pip, "-d", download, f"ansible=={ANSIBLE}"], env=_pip_environ(), timeout=600)
            (wheel,) = download.glob("ansible-*.whl")
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(root, [name for name in archive.namelist() if name.startswith(prefix)])
            shutil.rmtree(download)
            (root / "ready").write_text(ANSIBLE + "\n")
    return root


@pytest.fixture(scope="session")
def ansible() -> tuple[Path, Path]:
    """(ansible-core's bin directory, a collections path with ansible.posix)."""
    cache = cache_root(_MACHINE_ENVIRON) / "ansible"
    return _ansible_core(cache), _posix_collection(cache)


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
    ansible_bin: Path
    collections: Path
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

    def play(self, *, failing: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
        """Run the playbook; its exit status and the json callback's document."""
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
        # A short directory for ssh's control sockets: a unix socket path has at most 107 bytes.
        with tempfile.TemporaryDirectory(prefix="vk-cp-", dir="/tmp") as control:
            environ = {
                **os.environ,
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
                "ANSIBLE_SSH_CONTROL_PATH_DIR": control,
                "ANSIBLE_LOCAL_TEMP": str(self.tmp / "ansible-local"),
                "ANSIBLE_NOCOLOR": "1",
            }
            proc = subprocess.run(
                [
                    self.ansible_bin / "ansible-playbook",
                    "-i",
                    inventory,
                    "-e",
                    f"@{controller}",
                    PLAYBOOK,
                ],
                capture_output=True,
                text=True,
                env=environ,
                timeout=600,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        try:
            return proc.returncode, json.loads(proc.stdout)
        except json.JSONDecodeError:
            pytest.fail(
                f"ansible-playbook printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )


@pytest.fixture
def fleet(
    ansible: tuple[Path, Path], ssh_hosts: SshFleet, make_project: Callable[..., Path], tmp_path: Path
) -> Fleet:
    ansible_bin, collections = ansible
    return Fleet(tmp_path, ssh_hosts, ansible_bin, collections, make_project("fleet"))


def results(document: Mapping[str, Any], task: str) -> dict[str, dict[str, Any]]:
    """Each host's result of the task named ``task`` (the last play that has one)."""
    found: dict[str, dict[str, Any]] = {}
    for play in document["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                found.update(entry["hosts"])
    return found


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
    status, first = fleet.play()
    assert status == 0, json.dumps(first["stats"])
    packed = results(first, "Pack and sign the bundle")
    assert list(packed) == ["localhost"]  # once, on the controller
    pack = json.loads(packed["localhost"]["stdout"])
    assert pack["signed"] is True
    installed = results(first, "Install the bundle offline")
    assert sorted(installed) == sorted(HOSTS)
    for host in HOSTS:
        assert installed[host]["changed"] is True, installed[host]
        assert installed[host]["generation"] == 1
        assert first["stats"][host]["failures"] == 0
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
    status, second = fleet.play()
    assert status == 0, json.dumps(second["stats"])
    assert {host: second["stats"][host]["changed"] for host in HOSTS} == dict.fromkeys(HOSTS, 0)
    assert all(
        result["changed"] is False for result in results(second, "Install the bundle offline").values()
    )
    assert all(len(hook_log(fleet, host)) == 1 for host in HOSTS)

    # 3. A new release whose post-deploy hook fails on web1 only: web1 rolls back alone.
    source = fleet.project / "src" / "fleetsite" / "__init__.py"
    source.write_text(source.read_text().replace('RELEASE = "1"', 'RELEASE = "2"'))
    git_commit_all(fleet.project, "Release 2")
    status, third = fleet.play(failing=("web1",))
    assert status == 2, json.dumps(third["stats"])
    assert live(fleet, "web1") == ".venv.venvkeeper/generations/0001"
    assert verify(fleet, "web1")["generation"] == 1
    assert len(hook_log(fleet, "web1")) == 1  # its hook failed before logging release 2
    for host in ("localhost", "web2"):  # web2 is in the batch after web1's: the rollout went on
        assert live(fleet, host) == ".venv.venvkeeper/generations/0002"
        assert verify(fleet, host)["generation"] == 2
        assert hook_log(fleet, host)[-1].startswith("generation 2 release 2 ")
        assert third["stats"][host]["failures"] == 0
    assert third["stats"]["web1"]["failures"] == 1
    assert third["stats"]["web1"]["rescued"] == 1
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
