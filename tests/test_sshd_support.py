"""support.sshd: the fleet test's SSH hosts are real, separate, and checked by their host keys.

Fast (no Ansible): two servers started and reached with the client's ``ssh``, as the inventory of
:func:`support.sshd.write_inventory` has Ansible reach them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.sshd import SshFleet, ssh_fleet, sshd_missing, write_inventory


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[SshFleet]:
    reason = sshd_missing()
    if reason is not None:
        pytest.skip(f"needs Debian's sshd: {reason}")
    with ssh_fleet(tmp_path / "ssh", ("web1", "web2")) as fleet:
        yield fleet


def _ssh(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL
    )


def test_each_server_is_its_own_sshd_and_logs_the_client_in(fleet: SshFleet) -> None:
    web1, web2 = fleet.servers
    assert web1.port != web2.port
    assert web1.known_hosts_line.split()[2] != web2.known_hosts_line.split()[2]  # a host key each
    for server in fleet.servers:
        done = _ssh(fleet.ssh_argv(server, "echo", "$SSH_CONNECTION"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == str(server.port)
        assert f"Accepted publickey for {server.user}" in server.log_path.read_text()


def test_a_server_whose_host_key_is_not_known_is_refused(fleet: SshFleet) -> None:
    web1, web2 = fleet.servers
    # Only web1's key is known: reaching web2 must fail, not trust whatever answers there.
    fleet.known_hosts.write_text(web1.known_hosts_line)
    refused = _ssh(fleet.ssh_argv(web2, "true"))
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr
    assert _ssh(fleet.ssh_argv(web1, "true")).returncode == 0


def test_stopped_servers_refuse_connections(tmp_path: Path) -> None:
    if sshd_missing() is not None:
        pytest.skip(f"needs Debian's sshd: {sshd_missing()}")
    with ssh_fleet(tmp_path / "ssh", ("web1",)) as fleet:
        (server,) = fleet.servers
        assert server.running
    assert not server.running
    refused = _ssh(fleet.ssh_argv(server, "true"))
    assert refused.returncode == 255
    assert "Connection refused" in refused.stderr


def test_the_inventory_is_json_that_ansible_reads_as_yaml(fleet: SshFleet, tmp_path: Path) -> None:
    web1 = fleet.servers[0]
    path = write_inventory(tmp_path / "inventory.json", {"fleet": {"web1": fleet.host_vars(web1)}})
    hosts = json.loads(path.read_text())["all"]["children"]["fleet"]["hosts"]
    assert hosts["web1"]["ansible_port"] == web1.port
    assert hosts["web1"]["ansible_ssh_private_key_file"] == str(fleet.client_key)
    assert f"UserKnownHostsFile={fleet.known_hosts}" in hosts["web1"]["ansible_ssh_common_args"]
