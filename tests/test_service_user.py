"""A service user with no usable home (``useradd -r``): deploy, verify, update, pack and install work.

uv keeps a cache under ``$XDG_CACHE_HOME/uv`` or ``~/.cache/uv`` and has no fallback: for a user
whose home does not exist, is unset or cannot be read, every uv call fails with "Failed to
initialize cache". venvkeeper then puts uv's cache beside the environment's generations and says so.

The tests run the real venvkeeper as an unprivileged uid (``setpriv``; root would simply create the
missing home), from a working directory that uid cannot read, with HOME missing, unset, or a
root-owned 0700 directory, and no UV_CACHE_DIR/XDG variable. The uid runs venvkeeper with the
system's CPython of the same minor (pyenv's interpreters live under root's unreadable home), on this
checkout's own packages, and deploys a root-owned checkout of the project: the way a service is run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uv

UID = GID = 65534  # nobody: its passwd home is /nonexistent, as `useradd -r` leaves it
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}")
SRC = Path(__file__).resolve().parent.parent / "src"
# What the hermetic environment carries besides homes and caches: the local index, and no retries.
KEPT = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_PYTHON_DOWNLOADS", "UV_HTTP_RETRIES", "NO_PROXY", "LANG")


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run venvkeeper as another uid"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    if not SYSTEM_PYTHON.is_file():
        return f"{SYSTEM_PYTHON} (a CPython the unprivileged uid can run, of this minor) is missing"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


@dataclass
class Host:
    root: Path  # world-readable, root-owned
    launcher: Path  # the Python the uid runs venvkeeper with
    unreadable: Path  # a root-owned 0700 directory

    def run(self, home: str | None, *args: str | Path) -> subprocess.CompletedProcess[str]:
        environ = {"PATH": "/usr/bin:/bin", **{k: os.environ[k] for k in KEPT if k in os.environ}}
        if home is not None:
            environ["HOME"] = home
        return subprocess.run(
            [
                *("setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "env", "-i"),
                *(f"{key}={value}" for key, value in environ.items()),
                *(str(self.launcher), "-m", "venvkeeper", *map(str, args)),
            ],
            cwd=self.unreadable,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def host() -> Iterator[Host]:
    root = Path(tempfile.mkdtemp(prefix="vk-service-"))
    try:
        root.chmod(0o755)
        launcher_env = root / "venvkeeper"
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", launcher_env], check=True)
        (site,) = (launcher_env / "lib").glob("python3*/site-packages")
        # This checkout's dependencies and its source, as an installed venvkeeper would have them.
        (site / "venvkeeper-checkout.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n{SRC}\n")
        (launcher_env / "bin" / "uv").symlink_to(uv.find_uv_bin())
        unreadable = root / "root-only"
        unreadable.mkdir(mode=0o700)
        yield Host(root, launcher_env / "bin" / "python", unreadable)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _deployable(host: Host, project: Path) -> tuple[Path, Path]:
    """A root-owned, world-readable checkout, and an --env whose parent the uid owns."""
    checkout = host.root / "checkout"
    shutil.copytree(project, checkout, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(checkout):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    srv = host.root / "srv"
    srv.mkdir()
    os.chown(srv, UID, GID)
    return checkout, srv / ".venv"


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


HOMES: dict[str, Callable[[Host], str | None]] = {
    "missing": lambda host: "/nonexistent",
    "unset": lambda host: None,
    "unreadable": lambda host: str(host.unreadable),
}


@pytest.mark.slow
@pytest.mark.parametrize("home", sorted(HOMES))
def test_deploy_verify_update_without_a_usable_home(
    home: str, host: Host, make_project: Callable[..., Path]
) -> None:
    checkout, env = _deployable(host, make_project("updatable"))
    home_dir = HOMES[home](host)

    deployed = host.run(home_dir, "deploy", checkout, "--env", env, "--json")
    verified = host.run(home_dir, "verify", "--env", env, "--project", checkout, "--json")
    updated = host.run(home_dir, "update", checkout, "--env", env, "--dry-run", "--json")
    status = host.run(home_dir, "status", "--env", env)
    # A bundle too: pack's download cache and uv's go under the temporary directory, and the
    # install's uv cache beside its own generations.
    bundle = env.parent / "app.tar.gz"
    packed = host.run(home_dir, "pack", checkout, "-o", bundle, "--json")
    installed = host.run(home_dir, "install", bundle, "--env", env.parent / "from-bundle", "--json")

    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    cache = env.parent / ".venv.venvkeeper" / "uv-cache"
    uv_cache = _json(deployed)["uv_cache"]
    assert uv_cache["dir"] == str(cache)
    assert uv_cache["why"].startswith("uv's default cache is not usable (")
    assert any(cache.glob("archive-v*")), "uv did not install from the chosen cache"
    assert cache.stat().st_uid == UID
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert _json(verified)["findings"] == []
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert _json(updated)["outcome"] == "no-updates"
    assert status.returncode == 0, status.stderr
    assert f"uv cache: {cache} (uv's default cache is not usable" in status.stdout
    assert packed.returncode == 0, packed.stdout + packed.stderr
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert _json(installed)["uv_cache"]["dir"] == str(env.parent / "from-bundle.venvkeeper" / "uv-cache")
    # The service still runs, and nothing appeared where the home should be.
    probe = subprocess.run([env / "bin" / "python", "-c", "import tinydb"], check=False)
    assert probe.returncode == 0
    assert not Path("/nonexistent").exists()
    assert list(host.unreadable.iterdir()) == []


@pytest.mark.parametrize("where", ["root", "member"])
def test_a_tracked_file_the_deploying_user_cannot_read_is_one_error_line(
    where: str, host: Host, make_project: Callable[..., Path]
) -> None:
    """bundlewrap's git_deploy leaves a root-owned 0400 ``.bundlewrap_git_deploy`` in the checkout: a
    file the service user cannot read is named, with the fix, and nothing is deployed."""
    project = make_project("workspace")
    # At the root it is only copied; in a member it is hashed first (the member's content digest).
    name = ".bundlewrap_git_deploy" if where == "root" else "packages/webapp/secret.txt"
    (project / name).write_text("root only\n")
    subprocess.run(["git", "add", "-f", name], cwd=project, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "a root-only file"], cwd=project, check=True, capture_output=True)
    checkout, env = _deployable(host, project)
    (checkout / name).chmod(0o400)

    deployed = host.run("/nonexistent", "deploy", checkout, "--env", env)

    assert deployed.returncode == 2, deployed.stdout + deployed.stderr
    assert "Traceback" not in deployed.stderr
    assert deployed.stderr.splitlines()[0] == (
        f"error: {checkout / name}: cannot be read by this user (Permission denied)"
    )
    assert "stop tracking it" in deployed.stderr
    assert not env.exists() and not (env.parent / ".venv.venvkeeper").exists()
