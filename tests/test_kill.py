"""A deploy killed (SIGKILL) at any point: --env is untouched and still works, and no temporary
generation is left to accumulate (the next deploy sweeps what the killed one left).

The deploy runs as a real process in its own session; the whole process group (uv runs as a child)
is killed at a deterministic point. Most points are found by polling the state directory every
2 ms for a path that a deploy always creates and keeps for a while. The few windows that last
microseconds (a record renamed into place, the symlink switch, the adoption's exchange) are hit
exactly by an audit hook in the deploy's own process that kills its group on that system call.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.environment import hermetic_environ
from support.index import LocalIndex
from support.projects import ProjectFactory
from vk import generations, leftovers, run_in_env, snapshot, vk

# How long one deploy may take before the test gives up on it (a deploy here takes ~2 s).
DEPLOY_TIMEOUT = 120
POLL_INTERVAL = 0.002

# Runs ``python -m venvkeeper ...`` with an audit hook that SIGKILLs the process group on the
# first audit event EVENT whose argument INDEX is VALUE (argv: EVENT INDEX VALUE venvkeeper-args...).
_KILL_ON_AUDIT_EVENT = """
import os, runpy, signal, sys

event, index, value = sys.argv[1], int(sys.argv[2]), sys.argv[3]
del sys.argv[1:4]


def kill_here(name, args):
    if name != event or len(args) <= index:
        return
    arg = args[index]
    if isinstance(arg, (str, bytes, os.PathLike)) and os.fsdecode(arg) == value:
        os.killpg(0, signal.SIGKILL)


sys.addaudithook(kill_here)
runpy.run_module("venvkeeper", run_name="__main__", alter_sys=True)
"""


@dataclass
class Killed:
    """How a deploy that was to be killed ended."""

    code: int
    out: str
    err: str

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL


@pytest.fixture(scope="module")
def kill_uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kill-uv-cache")


@pytest.fixture(autouse=True)
def _own_uv_cache(_hermetic_environ: None, kill_uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # uv is killed half-way through writing its cache here; keep that away from the session's cache.
    monkeypatch.setenv("UV_CACHE_DIR", str(kill_uv_cache))


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project("workspace")


@pytest.fixture
def env(tmp_path: Path) -> Path:
    return tmp_path / "srv" / ".venv"


@pytest.fixture(scope="module")
def deployed_once(
    tmp_path_factory: pytest.TempPathFactory,
    project_factory: ProjectFactory,
    index_server: LocalIndex,
    kill_uv_cache: Path,
) -> tuple[Path, Path]:
    """The workspace project and its generation 1, deployed once and kept as a pristine copy.

    A generation names its own absolute path (scripts, records), so each test gets the copy back
    at the very path it was deployed to instead of deploying again (2-3 s saved per test).
    """
    root = tmp_path_factory.mktemp("kill-live")
    work, pristine = root / "work", root / "pristine"
    project = project_factory.create(work / "workspace", "workspace")
    env = work / "srv" / ".venv"
    environ = hermetic_environ(
        os.environ, index_url=index_server.url, home=root / "home", uv_cache_dir=kill_uv_cache
    )
    for argv in (
        [sys.executable, "-m", "venvkeeper", "deploy", str(project), "--env", str(env)],
        [str(env / "bin" / "webapp")],  # writes the generation's __pycache__ before any snapshot
    ):
        subprocess.run(argv, env=environ, check=True, capture_output=True, timeout=DEPLOY_TIMEOUT)
    shutil.copytree(work, pristine, symlinks=True)
    return work, pristine


@pytest.fixture
def live(deployed_once: tuple[Path, Path], _hermetic_environ: None) -> tuple[Path, Path]:
    """(project, env): generation 1 live, exactly as deployed."""
    work, pristine = deployed_once
    shutil.rmtree(work)
    shutil.copytree(pristine, work, symlinks=True)
    return work / "workspace", work / "srv" / ".venv"


def _home(env: Path) -> Path:
    return env.parent / f"{env.name}.venvkeeper"


def _edit_webapp(project: Path) -> None:
    """Change the webapp member's code (no version bump), so a deploy must build a new generation."""
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(
        init.read_text().replace('print(f"webapp {__version__}', 'print(f"webapp EDITED {__version__}')
    )


def _start(argv: list[str], logs: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    logs.mkdir(exist_ok=True)
    out, err = logs / "stdout", logs / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True
        )
    return proc, out, err


def _ended(proc: subprocess.Popen[bytes], out: Path, err: Path) -> Killed:
    code = proc.wait(timeout=DEPLOY_TIMEOUT)
    return Killed(code, out.read_text(errors="replace"), err.read_text(errors="replace"))


def deploy_killed_when(project: Path, env: Path, pattern: str, logs: Path) -> Killed:
    """Deploy, and SIGKILL its process group as soon as ``pattern`` (under PATH.venvkeeper) exists.

    Fails when the deploy ends before the path appears: a kill point that is never reached
    would make the test prove nothing.
    """
    proc, out, err = _start(
        [sys.executable, "-m", "venvkeeper", "deploy", str(project), "--env", str(env)], logs
    )
    where = str(_home(env) / pattern)
    deadline = time.monotonic() + DEPLOY_TIMEOUT
    try:
        while not glob.glob(where):
            if proc.poll() is not None:
                ended = _ended(proc, out, err)
                pytest.fail(
                    f"the deploy exited {ended.code} before {pattern} appeared, so it was not killed "
                    f"there\n--- stdout ---\n{ended.out}--- stderr ---\n{ended.err}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern} did not appear within {DEPLOY_TIMEOUT} s")
            time.sleep(POLL_INTERVAL)
    finally:
        # A group whose processes all exited (only a zombie left) is no error.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return _ended(proc, out, err)


def deploy_killed_at_event(
    project: Path, env: Path, event: str, index: int, value: str | Path, logs: Path
) -> Killed:
    """Deploy, SIGKILLing its group from inside at the audit event ``event`` with args[index] == value."""
    proc, out, err = _start(
        [
            sys.executable,
            "-c",
            _KILL_ON_AUDIT_EVENT,
            event,
            str(index),
            str(value),
            "deploy",
            str(project),
            "--env",
            str(env),
        ],
        logs,
    )
    ended = _ended(proc, out, err)
    if not ended.killed:
        pytest.fail(
            f"the deploy exited {ended.code} without reaching {event} {value}\n"
            f"--- stdout ---\n{ended.out}--- stderr ---\n{ended.err}"
        )
    return ended


def live_number(env: Path) -> int:
    """The generation --env points at, which must be a complete one (directory and record)."""
    assert env.is_symlink(), f"{env} is not a symlink"
    target = os.readlink(env)
    assert re.fullmatch(rf"{re.escape(env.name)}\.venvkeeper/generations/\d{{4}}", target), target
    number = int(target[-4:])
    generation = _home(env) / "generations" / f"{number:04d}"
    assert generation.is_dir()
    assert not generation.is_symlink()
    assert (generation.parent / f"{number:04d}.json").is_file(), f"generation {number} has no record"
    return number


class LeftoverError(AssertionError):
    """What an interrupted deploy left is still there after the next deploy (its own exception, so a
    known leak can be marked xfail without hiding any other failure)."""


def assert_clean(env: Path) -> None:
    """Nothing an interrupted deploy leaves is left: only complete generations, nothing in tmp/,
    nothing beside --env but its state directory."""
    found = generations(env)
    numbers = {name for name in found if re.fullmatch(r"\d{4}", name)}
    stray = sorted(
        {*leftovers(env), *(n for n in found if n not in numbers and n.removesuffix(".json") not in numbers)}
    )
    stray += sorted(
        p.name for p in env.parent.iterdir() if p.name not in (env.name, f"{env.name}.venvkeeper")
    )
    if stray:
        raise LeftoverError(f"left behind after the next deploy: {stray} (generations: {found})")


def assert_runs(env: Path, edited: bool) -> None:
    script = run_in_env(env, "webapp")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("webapp EDITED 0.1.0 (" if edited else "webapp 0.1.0 ("), script.stdout


# -- over a live generation --------------------------------------------------------------------

# Paths a deploy that builds generation 2 always creates, in order, and keeps until it is done.
POINTS_BEFORE_THE_RECORD = {
    "staging-copy": "tmp/stage-*",
    "member-build": "tmp/build-webapp-*",
    "new-generation": "generations/0002",
    "its-interpreter": "generations/0002/bin/python",
    "member-installed": "generations/0002/lib/python3*/site-packages/webapp",
}


@pytest.mark.parametrize("pattern", POINTS_BEFORE_THE_RECORD.values(), ids=POINTS_BEFORE_THE_RECORD.keys())
def test_killed_while_building_leaves_the_live_generation_untouched(
    live: tuple[Path, Path], tmp_path: Path, pattern: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = live
    before = snapshot(_home(env) / "generations" / "0001")
    _edit_webapp(project)

    ended = deploy_killed_when(project, env, pattern, tmp_path / "logs")

    assert ended.killed, f"exit {ended.code}\n{ended.err}"
    assert glob.glob(str(_home(env) / pattern)), "the kill point is not on disk"
    assert live_number(env) == 1
    assert snapshot(_home(env) / "generations" / "0001") == before
    assert_runs(env, edited=False)

    retry = vk(capsys, "deploy", project, "--env", env, "--json")

    assert retry.code == 0, retry.err
    assert (retry.json["generation"], retry.json["previous"]) == (2, 1)
    # The webapp wheel may have been built (and cached by content) before the kill.
    assert sorted(retry.json["rebuilt"] + retry.json["reused"]) == ["core", "webapp"]
    assert "core" in retry.json["reused"]
    assert live_number(env) == 2
    assert_runs(env, edited=True)
    assert_clean(env)
    assert generations(env) == ["0001", "0001.json", "0002", "0002.json"]


def test_killed_when_the_record_appears_leaves_a_complete_generation_live(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = live
    _edit_webapp(project)

    # Killed just before or just after the switch: either generation is complete and works.
    ended = deploy_killed_when(project, env, "generations/0002.json", tmp_path / "logs")

    number = live_number(env)
    assert number in (1, 2), ended
    assert_runs(env, edited=number == 2)

    retry = vk(capsys, "deploy", project, "--env", env, "--json")

    assert retry.code == 0, retry.err
    assert live_number(env) in (2, 3)
    assert_runs(env, edited=True)
    assert_clean(env)


def test_killed_once_the_manifest_is_sealed_leaves_no_orphan(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = live
    _edit_webapp(project)

    # The manifest is written just before the record: killed between the two, the generation is
    # incomplete, and the next run must remove its manifest along with it.
    deploy_killed_when(project, env, "generations/0002.manifest.json", tmp_path / "logs")

    assert live_number(env) in (1, 2)
    retry = vk(capsys, "deploy", project, "--env", env, "--json")

    assert retry.code == 0, retry.err
    assert_runs(env, edited=True)
    assert_clean(env)  # includes: no NNNN.manifest.json without its NNNN.json
    verified = vk(capsys, "verify", "--env", env, "--json")
    assert verified.code == 0, verified.out
    assert verified.json["findings"] == []


def test_killed_before_the_record_is_renamed_into_place(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = live
    before = snapshot(_home(env) / "generations" / "0001")
    _edit_webapp(project)
    record = _home(env) / "generations" / "0002.json"

    deploy_killed_at_event(project, env, "os.rename", 1, record, tmp_path / "logs")

    assert not record.exists()
    # Killed between writing the record's temporary file and renaming it into place.
    assert len(list(record.parent.glob(".0002.json.*.tmp"))) == 1, generations(env)
    assert live_number(env) == 1
    assert snapshot(_home(env) / "generations" / "0001") == before
    assert_runs(env, edited=False)

    retry = vk(capsys, "deploy", project, "--env", env, "--json")

    assert retry.code == 0, retry.err
    assert retry.json["generation"] == 2
    assert_runs(env, edited=True)
    assert_clean(env)


def test_killed_before_the_symlink_switch(
    live: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = live
    _edit_webapp(project)

    deploy_killed_at_event(project, env, "os.rename", 1, env, tmp_path / "logs")

    # Killed between making the new symlink (in the state directory's tmp/, where the next run
    # sweeps) and renaming it over --env: nothing stray beside --env.
    assert sorted(p.name for p in env.parent.iterdir()) == [env.name, f"{env.name}.venvkeeper"]
    (new_link,) = (_home(env) / "tmp").glob("link-*")
    assert os.readlink(new_link) == f"{env.name}.venvkeeper/generations/0002"
    assert live_number(env) == 1
    assert_runs(env, edited=False)

    retry = vk(capsys, "deploy", project, "--env", env, "--json")

    assert retry.code == 0, retry.err
    assert_runs(env, edited=True)
    assert_clean(env)


# -- the first deploy ---------------------------------------------------------------------------

FIRST_DEPLOY_POINTS = {
    "member-installed": "generations/0001/lib/python3*/site-packages/webapp",
    "record": "generations/0001.json",
}


@pytest.mark.parametrize("pattern", FIRST_DEPLOY_POINTS.values(), ids=FIRST_DEPLOY_POINTS.keys())
def test_first_deploy_killed(
    project: Path, env: Path, tmp_path: Path, pattern: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ended = deploy_killed_when(project, env, pattern, tmp_path / "logs")

    if pattern.endswith(".json"):
        # Killed just before or just after the switch.
        assert not os.path.lexists(env) or live_number(env) == 1, ended
    else:
        assert ended.killed, f"exit {ended.code}\n{ended.err}"
        assert not os.path.lexists(env)
    if os.path.lexists(env):
        assert_runs(env, edited=False)

    retry = vk(capsys, "deploy", project, "--env", env, "--json")

    assert retry.code == 0, retry.err
    live_number(env)
    assert_runs(env, edited=False)
    assert_clean(env)


# -- adopting a plain venv ---------------------------------------------------------------------


@pytest.fixture
def plain_venv(env: Path, uv_bin: Path) -> dict[str, str]:
    """A plain venv at --env with tinyutil in it; returns its snapshot (after it ran once)."""
    for argv in (
        ["venv", "--quiet", str(env)],
        ["pip", "install", "--quiet", "--python", str(env / "bin" / "python"), "tinyutil"],
    ):
        subprocess.run([uv_bin, *argv], check=True, capture_output=True, timeout=DEPLOY_TIMEOUT)
    assert _plain_venv_works(env)
    return snapshot(env)


def _plain_venv_works(path: Path) -> bool:
    proc = subprocess.run(
        [path / "bin" / "python", "-c", "import tinyutil; print(tinyutil.__version__)"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return proc.returncode == 0 and proc.stdout == "1.1.0\n"


def assert_adopted_intact(env: Path, plain: dict[str, str]) -> None:
    """Exactly one generation is the adopted venv, recorded as such, with the venv's files unchanged."""
    home = _home(env) / "generations"
    adopted = [
        path.with_suffix("")
        for path in sorted(home.glob("[0-9][0-9][0-9][0-9].json"))
        if json.loads(path.read_text())["kind"] == "adopted"
    ]
    assert len(adopted) == 1, generations(env)
    assert adopted[0].is_dir()
    assert not adopted[0].is_symlink()
    assert snapshot(adopted[0]) == plain
    assert _plain_venv_works(adopted[0])


def assert_venv_or_generation(env: Path, plain: dict[str, str]) -> None:
    """--env is the untouched plain venv, or a working generation with the venv adopted beside it."""
    assert os.path.lexists(env), f"{env} is missing"
    if env.is_symlink():
        live_number(env)
        assert_runs(env, edited=False)
        assert_adopted_intact(env, plain)
    else:
        assert snapshot(env) == plain
        assert _plain_venv_works(env)


ADOPTION_POINTS = {
    "its-interpreter": "generations/0002/bin/python",
    "adopted-record": "generations/0001.json",
}


@pytest.mark.parametrize("pattern", ADOPTION_POINTS.values(), ids=ADOPTION_POINTS.keys())
def test_killed_while_adopting_a_plain_venv(
    project: Path,
    env: Path,
    plain_venv: dict[str, str],
    tmp_path: Path,
    pattern: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ended = deploy_killed_when(project, env, pattern, tmp_path / "logs")

    if "0002/" in pattern:
        assert ended.killed, f"exit {ended.code}\n{ended.err}"
        assert not env.is_symlink()
    assert_venv_or_generation(env, plain_venv)

    retry = vk(capsys, "deploy", project, "--env", env, "--json")

    assert retry.code == 0, retry.err
    live_number(env)
    assert_runs(env, edited=False)
    assert_adopted_intact(env, plain_venv)
    assert_clean(env)


def test_killed_just_before_the_adoption_exchange(
    project: Path,
    env: Path,
    plain_venv: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The generation's slot is already the symlink that is to be swapped with --env.
    deploy_killed_at_event(project, env, "ctypes.dlsym", 1, "renameat2", tmp_path / "logs")

    assert (_home(env) / "generations" / "0001").is_symlink()
    assert not env.is_symlink()
    assert snapshot(env) == plain_venv
    assert _plain_venv_works(env)

    retry = vk(capsys, "deploy", project, "--env", env, "--json")

    assert retry.code == 0, retry.err
    live_number(env)
    assert_runs(env, edited=False)
    assert_adopted_intact(env, plain_venv)
    assert_clean(env)
