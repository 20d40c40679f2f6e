"""A real package index on 127.0.0.1: pypiserver serving a directory of wheels.

pypiserver reads its directory on every request (the ``simple-dir`` backend), so a wheel
copied in is visible to the next request and a wheel taken out is gone. It runs as a child
process so that a test can stop it (the index becomes unreachable: connection refused) and
start it again on the same port.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

__all__ = ["LocalIndex", "LocalIndexError"]

_HOST = "127.0.0.1"
_START_TIMEOUT = 15.0
# pypiserver, ended by the end of its stdin: when the test process dies without stopping it
# (a crash, kill -9), its pipe closes and the server goes too instead of holding the port.
_LAUNCHER = """\
import os, sys, threading
threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
from pypiserver.__main__ import main
main(sys.argv[1:])
"""


class LocalIndexError(Exception):
    """The local index could not be started or changed."""


def _name_and_version(filename: str) -> tuple[str, Version]:
    """A wheel's or an sdist's name and version (raises on anything pypiserver would ignore)."""
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
    else:
        name, version = parse_sdist_filename(filename)
    return name, version


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


class LocalIndex:
    """Serve ``<root>/packages`` as a PEP 503 simple index at :attr:`url`.

    Wheels taken away with :meth:`unpublish` wait in ``<root>/attic`` so that
    :meth:`restore` can put a snapshot back.
    """

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = Path(root)
        self.packages_dir = self.root / "packages"
        self.attic_dir = self.root / "attic"
        self.log_path = self.root / "pypiserver.log"
        self.packages_dir.mkdir(parents=True, exist_ok=True)
        self.attic_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The simple index, as given to ``--index-url`` (no trailing slash, as uv writes it)."""
        return f"{self.base_url}/simple"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start serving on :attr:`port`; returns once the index answers."""
        if self.running:
            return
        argv = [
            sys.executable,
            "-c",
            _LAUNCHER,
            "run",
            "--host",
            _HOST,
            "--port",
            str(self.port),
            # Without this pypiserver redirects unknown projects to pypi.org.
            "--disable-fallback",
            "--backend",
            "simple-dir",
            "--hash-algo",
            "sha256",
            "--server",
            "wsgiref",
            str(self.packages_dir),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_text = self.log_path.read_text(errors="replace")[-2000:]
                raise LocalIndexError(f"pypiserver did not start on {self.base_url}; its log:\n{log_text}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection(_HOST, self.port, timeout=1)
        try:
            connection.request("GET", "/simple/")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        """Stop serving: from now on a connection to :attr:`url` is refused."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LocalIndex:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def publish(self, wheel: Path) -> Path:
        """Copy ``wheel`` (or an sdist) into the index; the next request sees it.

        A file of the same name is replaced (the old one goes to the attic).
        """
        wheel = Path(wheel)
        _name_and_version(wheel.name)  # refuse what pypiserver would silently ignore
        target = self.packages_dir / wheel.name
        # pypiserver skips dot files, so the copy is invisible until the rename.
        partial = self.packages_dir / f".{wheel.name}.partial"
        shutil.copyfile(wheel, partial)
        if target.exists():
            self._to_attic(wheel.name)
        partial.replace(target)
        return target

    def published(self) -> list[str]:
        """File names currently served, sorted."""
        return sorted(path.name for path in self.packages_dir.iterdir() if not path.name.startswith("."))

    def unpublish(self, name: str, version: str) -> list[str]:
        """Take every file of ``name`` ``version`` off the index; returns their names."""
        wanted = (canonicalize_name(name), Version(version))
        removed = []
        for filename in self.published():
            if _name_and_version(filename) == wanted:
                self._to_attic(filename)
                removed.append(filename)
        if not removed:
            raise LocalIndexError(f"{name} {version} is not published on {self.url}")
        return removed

    # Files are never deleted, only moved between the index and the attic, so an inode
    # number names one file's content for the whole session.
    def _to_attic(self, filename: str) -> None:
        served = self.packages_dir / filename
        served.replace(self.attic_dir / f"{served.stat().st_ino}-{filename}")

    def snapshot(self) -> dict[str, int]:
        """What is served now, to give to :meth:`restore`."""
        return {filename: (self.packages_dir / filename).stat().st_ino for filename in self.published()}

    def restore(self, snapshot: dict[str, int]) -> None:
        """Serve exactly the files of ``snapshot`` again, with their content then."""
        if self.snapshot() == snapshot:
            return
        for filename in self.published():
            if snapshot.get(filename) != (self.packages_dir / filename).stat().st_ino:
                self._to_attic(filename)
        for filename, inode in snapshot.items():
            if not (self.packages_dir / filename).exists():
                (self.attic_dir / f"{inode}-{filename}").replace(self.packages_dir / filename)
