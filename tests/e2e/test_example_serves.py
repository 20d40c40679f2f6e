"""The example site serves: ``examples/webapp`` deployed from PyPI, gunicorn started from the
deployed environment's ``bin/`` on 127.0.0.1, and curl gets HTTP 200 with the app's greeting.

Two ways: the command examples/webapp documents (``gunicorn webapp.wsgi:app``) in the environment
venvkeeper deployed, and the Docker image's ``CMD`` in the environment the Dockerfile's own lock and
build stages make (replayed outside Docker, as tests/test_docker_example.py replays them on a fixture,
here on the real example from PyPI), its bind address moved to 127.0.0.1 and ``bin/`` first on PATH
as the image's ``ENV PATH`` puts ``/opt/venv/bin``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.process import run
from test_docker_example import _copy_lock_inputs, _stage, _stage_env, parse_dockerfile

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "webapp"
DOCKERFILE = ROOT / "examples" / "docker" / "Dockerfile"
GREETING = "hello from sitecore"


@pytest.fixture(scope="module")
def deployed(e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/webapp deployed once (its post-deploy hooks migrate a database beside the env)."""
    env = tmp_path_factory.mktemp("webapp-serves") / ".venv"
    proc = subprocess.run(
        [sys.executable, "-m", "venvkeeper", "deploy", EXAMPLE, "--env", env, "--python", sys.executable],
        capture_output=True,
        text=True,
        env=e2e_env,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    return env


@pytest.fixture
def replayed(tmp_path: Path) -> Path:
    """/opt/venv as the Dockerfile builds it from examples/webapp: the lock stage's export, then the
    build stage's COPY and RUN lines verbatim (uv and python3 from PATH, where the image mounts them)."""
    stages = parse_dockerfile(DOCKERFILE.read_text())
    lock, build = _stage(stages, "lock"), _stage(stages, "build")
    inputs, exported = tmp_path / "lock-inputs", tmp_path / "pylock.toml"
    _copy_lock_inputs(EXAMPLE, inputs)
    (export_run,) = lock.of("RUN")
    run(
        ["sh", "-c", export_run.args.replace(" -o /pylock.toml", f" -o {exported}")],
        cwd=inputs,
        env=_stage_env(lock),
    )
    venv, workdir = tmp_path / "opt-venv", tmp_path / "build"
    workdir.mkdir()
    env = _stage_env(build, venv)
    for step in build.instructions:
        if step.keyword == "COPY" and step.flags == ("--from=lock",):
            shutil.copy2(exported, workdir / "pylock.toml")
        elif step.keyword == "COPY":
            (source,) = step.sources
            # What Dockerfile.dockerignore keeps out of the build context.
            leftovers = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".venv")
            shutil.copytree(ROOT / source, workdir / step.destination, ignore=leftovers)
        elif step.keyword == "RUN":
            # The proof step's venvkeeper is mounted from the image's venvkeeper stage; here it is the
            # one under test.
            command = step.args.replace(
                "/opt/venvkeeper/bin/venvkeeper", f"{shlex.quote(sys.executable)} -m venvkeeper"
            )
            run(["sh", "-c", command], cwd=workdir, env=env, timeout=600)
    return venv


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _docker_cmd(bind: str) -> list[str]:
    """The final stage's exec-form CMD, with its --bind moved to ``bind``."""
    (line,) = re.findall(r"(?m)^CMD (\[.*\])$", DOCKERFILE.read_text())[-1:]
    argv: list[str] = json.loads(line)
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8000"
    argv[argv.index("--bind") + 1] = bind
    return argv


@pytest.fixture
def curl() -> str:
    return shutil.which("curl") or pytest.skip("curl is not installed: the HTTP request is made with it")


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The gunicorn processes a test starts, stopped (SIGTERM, then SIGKILL) whatever the outcome."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("how", ["readme", "docker-cmd"])
def test_gunicorn_serves_the_app(
    request: pytest.FixtureRequest, tmp_path: Path, curl: str, started: list[subprocess.Popen[str]], how: str
) -> None:
    venv: Path = request.getfixturevalue("deployed" if how == "readme" else "replayed")
    port = _free_port()
    bind = f"127.0.0.1:{port}"
    bin_dir = venv / "bin"
    environ = {
        **os.environ,
        "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
        "WEBAPP_DATABASE_URL": f"sqlite:///{tmp_path / 'webapp.db'}",
    }
    if how == "readme":
        argv = [str(bin_dir / "gunicorn"), "--bind", bind, "--workers", "1", "webapp.wsgi:app"]
    else:
        argv = _docker_cmd(bind)
        assert shutil.which(argv[0], path=environ["PATH"]) == str(bin_dir / argv[0])
    log = tmp_path / "gunicorn.log"
    with log.open("w") as sink:
        server = subprocess.Popen(argv, cwd=tmp_path, env=environ, stdout=sink, stderr=sink, text=True)
    started.append(server)

    # --retry-connrefused: gunicorn takes a moment to bind; curl retries until it listens (or gives up).
    body = tmp_path / "body"
    retry = ["--retry", "20", "--retry-delay", "1", "--retry-connrefused", "--max-time", "5"]
    response = subprocess.run(
        [curl, "-sS", *retry, "-o", body, "-w", "%{http_code}", f"http://{bind}/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert server.poll() is None, f"gunicorn exited {server.returncode}:\n{log.read_text()}"
    assert (response.returncode, response.stdout) == (0, "200"), f"{response.stderr}\n{log.read_text()}"
    assert body.read_text() == GREETING

    # Stopped as a service manager stops it: SIGTERM, and a clean exit.
    server.terminate()
    assert server.wait(timeout=15) == 0, log.read_text()
