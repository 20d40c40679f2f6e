"""Real OpenSSH servers on 127.0.0.1 for the fleet tests, and an Ansible inventory that reaches them.

Each :class:`SshServer` is Debian's ``/usr/sbin/sshd`` in the foreground (``-D -e``) on a free port of
its own, with a host key of its own and one client key in an ``authorized_keys`` file beside its
config, so it reads nothing under ``/etc/ssh`` or the user's ``~/.ssh``. The client side gets a
``known_hosts`` file with every server's host key, so ``StrictHostKeyChecking=yes`` holds: a test
that reached another server than the one it started would fail, not trust it.

The servers log in only the user running the tests (``AllowUsers``). Run as root, sshd needs its
privilege separation directory (``/run/sshd``, which Debian's service unit creates); run as any
other user it does without, and can only log that user in, which is all the tests ask.

A server dies with the process that started it (``PR_SET_PDEATHSIG``): a test runner killed with
-9 leaves no sshd holding a port.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "SSHD",
    "SshFleet",
    "SshServer",
    "SshServerError",
    "ssh_fleet",
    "sshd_missing",
    "write_inventory",
]

SSHD = Path("/usr/sbin/sshd")
_HOST = "127.0.0.1"
_START_TIMEOUT = 15.0
_PRIVSEP_DIR = Path("/run/sshd")
_PR_SET_PDEATHSIG = 1


class SshServerError(Exception):
    """An sshd could not be started; the message carries its log."""


def sshd_missing() -> str | None:
    """Why the fleet tests cannot run here (to skip with), or None when they can."""
    if not SSHD.is_file():
        return f"{SSHD} is not installed (Debian: apt-get install openssh-server)"
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (Debian: apt-get install openssh-client)"
    if os.geteuid() == 0 and not _PRIVSEP_DIR.is_dir():
        try:
            # What Debian's ssh.service does before it starts sshd (RuntimeDirectory=sshd).
            _PRIVSEP_DIR.mkdir(mode=0o755)
        except OSError as error:
            return f"sshd run as root needs {_PRIVSEP_DIR}, which cannot be made: {error}"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


# Looked up here, in the parent: between fork and exec the child only calls it (no dlopen there,
# where another thread of the test process may have held the loader's lock at the fork).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _keygen(path: Path, comment: str) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def _banner(port: int) -> bytes:
    """The first bytes the server sends (``SSH-2.0-OpenSSH_...``), or b"" when it does not answer."""
    try:
        with socket.create_connection((_HOST, port), timeout=1) as conn:
            return conn.recv(64)
    except OSError:
        return b""


_CONFIG = """\
Port {port}
ListenAddress {host}
HostKey {host_key}
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# No PAM: the login needs no account setup from /etc/pam.d, and runs as an unprivileged sshd too.
UsePAM no
# The test's directories are the test runner's, not laid out for sshd's ownership checks.
StrictModes no
# Ansible copies its modules over sftp (scp being the fallback); internal-sftp needs no binary.
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


class SshServer:
    """One sshd on ``127.0.0.1:port``, configured entirely from ``root``."""

    def __init__(self, root: Path, *, name: str, client_public_key: Path) -> None:
        self.root = Path(root)
        self.name = name
        self.user = getpass.getuser()
        self.port = _free_port()
        self.log_path = self.root / "sshd.log"
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = _keygen(self.root / "ssh_host_ed25519_key", f"{name}-host")
        shutil.copyfile(client_public_key, self.root / "authorized_keys")
        self.config_path = self.root / "sshd_config"
        self.config_path.write_text(
            _CONFIG.format(port=self.port, host=_HOST, host_key=self.host_key, root=self.root, user=self.user)
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def known_hosts_line(self) -> str:
        key_type, key = (self.root / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        return f"[{_HOST}]:{self.port} {key_type} {key}\n"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start sshd; returns once it sends its SSH banner."""
        if self.running:
            return
        # -t first: a bad config is one clear error instead of a server that never answers.
        check = subprocess.run(
            [SSHD, "-t", "-f", self.config_path],
            check=False,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if check.returncode != 0:
            raise SshServerError(f"{SSHD} -t -f {self.config_path}: {check.stderr.strip()}")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", self.config_path],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - it only calls prctl, resolved before the fork
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while not _banner(self.port).startswith(b"SSH-2.0-"):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_text = self.log_path.read_text(errors="replace")[-2000:]
                raise SshServerError(f"sshd did not start on {_HOST}:{self.port}; its log:\n{log_text}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> SshServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class SshFleet:
    """``count`` servers sharing one client key, and the client files that reach them."""

    root: Path
    servers: list[SshServer]
    client_key: Path
    known_hosts: Path

    def ssh_argv(self, server: SshServer, *command: str) -> list[str]:
        """``ssh`` into ``server`` as Ansible will (same key, same host key checking)."""
        return [
            "ssh",
            *self.ssh_options(),
            "-p",
            str(server.port),
            "-i",
            str(self.client_key),
            f"{server.user}@{_HOST}",
            *command,
        ]

    def ssh_options(self) -> list[str]:
        return [
            "-F",
            "/dev/null",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ]

    def host_vars(self, server: SshServer) -> dict[str, Any]:
        """The connection variables of ``server`` for an Ansible inventory."""
        return {
            "ansible_host": _HOST,
            "ansible_port": server.port,
            "ansible_user": server.user,
            "ansible_ssh_private_key_file": str(self.client_key),
            "ansible_ssh_common_args": " ".join(self.ssh_options()),
            # The interpreter behind the test's venv: the hosts share this filesystem, and a login
            # session finds it without the test's PATH. (Not the venv: modules must not see its packages.)
            "ansible_python_interpreter": os.path.realpath(sys.executable),
        }


@contextlib.contextmanager
def ssh_fleet(root: Path, names: Sequence[str]) -> Iterator[SshFleet]:
    """Start one sshd per name under ``root/<name>``; all are stopped when the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    client_key = _keygen(root / "client_ed25519", "venvkeeper-tests-client")
    servers = [
        SshServer(root / name, name=name, client_public_key=client_key.with_suffix(".pub")) for name in names
    ]
    known_hosts = root / "known_hosts"
    known_hosts.write_text("".join(server.known_hosts_line for server in servers))
    try:
        for server in servers:
            server.start()
        yield SshFleet(root, servers, client_key, known_hosts)
    finally:
        for server in servers:
            server.stop()


def write_inventory(path: Path, groups: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Path:
    """Write an Ansible inventory: ``{group: {host: host_vars}}``.

    JSON is YAML, and Ansible's ``yaml`` inventory plugin reads ``.json`` files, so no YAML writer is
    needed and the file says exactly what Python gave it.
    """
    inventory = {
        "all": {"children": {group: {"hosts": {**hosts}} for group, hosts in groups.items()}},
    }
    path.write_text(json.dumps(inventory, indent=2, sort_keys=True) + "\n")
    return path
