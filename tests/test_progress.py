"""Progress on a terminal: deploy, install, heal, pack and update show their steps on stderr when it is a
terminal, and nothing changes off a terminal, with --json or with --quiet.

The real command runs as a process whose stderr is a pseudo-terminal (``pty.openpty``) and whose stdout
is a pipe, as in ``venvkeeper deploy ... | tee log`` at a shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.gitremote import add_remote
from support.process import run
from venvkeeper.cli.progress import Terminal
from venvkeeper.core import progress
from venvkeeper.gateways.uv import find_uv
from vk import commit_all, site_packages, vk_process

# What a terminal does with rich's output: characters, carriage returns, new lines, and the control
# sequences of its live display (cursor up, erase the line; colours and the cursor's visibility).
_TOKENS = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|[^\x1b\r\n]")
_MODULES_PROGRAM = (
    "import sys\n"
    "from venvkeeper.cli.main import main\n"
    "code = main(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as fh:\n"
    "    fh.write(' '.join(sys.modules))\n"
    "raise SystemExit(code)\n"
)


@dataclass
class OnTerminal:
    code: int
    out: str  # stdout, a pipe
    raw: bytes  # what the terminal received on stderr
    lines: list[str]  # what the terminal shows once the command has ended (empty lines left out)


def _reader(master: int, chunks: list[bytes]) -> threading.Thread:
    """A thread keeping what the terminal receives (so that the writer never blocks on a full tty)."""

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the terminal's other end has gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    return reader


def on_terminal(*args: str | Path, program: tuple[str, ...] = ("-m", "venvkeeper")) -> OnTerminal:
    """Run venvkeeper with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"}
    chunks: list[bytes] = []
    reader = _reader(master, chunks)
    try:
        proc = subprocess.run(
            [sys.executable, *program, *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            timeout=180,
            check=False,
        )
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    raw = b"".join(chunks)
    return OnTerminal(proc.returncode, proc.stdout.decode(), raw, _screen(raw.decode("utf-8", "replace")))


def _screen(text: str) -> list[str]:
    """The lines a terminal shows after receiving ``text``: a small emulator of what rich sends."""
    rows: list[list[str]] = [[]]
    row = col = 0
    for token in _TOKENS.finditer(text):
        char, (arg, command) = token.group(0), token.group(1, 2)
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
        elif command == "A":  # cursor up
            row = max(0, row - int(arg or 1))
        elif command == "K":  # erase in line: 2 the whole line, else from the cursor on
            rows[row][:] = [] if arg == "2" else rows[row][:col]
        elif command is None:
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col], col = char, col + 1
        while len(rows) <= row:
            rows.append([])
    return [text for text in ("".join(r).rstrip() for r in rows) if text]


def _steps(result: OnTerminal) -> list[str]:
    """The finished steps' lines, without their times: "✓ staging the project"."""
    return [re.sub(r"\s+\d+\.\ds$", "", line) for line in result.lines if line[:2] in ("✓ ", "✗ ")]


def _without_times(text: str) -> str:
    return re.sub(r"\d+\.\d\ds", "T", text)


def _with_hooks(project: Path, *commands: str) -> None:
    pyproject = project / "pyproject.toml"
    listed = ", ".join(f"'{c}'" for c in commands)
    before = pyproject.read_text().partition("\n[tool.venvkeeper.hooks]")[0]  # the hooks replaced
    pyproject.write_text(before + f"\n[tool.venvkeeper.hooks]\npost-deploy = [{listed}]\n")
    commit_all(project, "hooks")


def _third_party(env: Path, members: set[str]) -> int:
    """The distributions installed in ``env`` that are not the workspace's members."""
    names = {d.name.partition("-")[0].replace("_", "-") for d in site_packages(env).glob("*.dist-info")}
    assert members <= names
    return len(names - members)


def test_steps_from_many_threads_leave_exactly_their_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The display is drawn from several threads at once (builds beside the sync, the smoke check beside
    the seal): every finished step keeps its line and no spinner is left behind, however they interleave."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(Terminal, "_REFRESH_S", 0.001)  # redraws as often as can be, to meet the prints
    master, slave = pty.openpty()
    chunks: list[bytes] = []
    reader = _reader(master, chunks)
    stream = os.fdopen(slave, "w", encoding="utf-8")
    terminal = Terminal(stream)

    def work(worker: int) -> None:
        for n in range(40):
            with progress.step(f"step {worker}-{n}") as step:
                step.summary = f"done {worker}-{n}"

    try:
        with progress.reporting(terminal):
            threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        terminal.close()
    finally:
        stream.close()
        reader.join(timeout=30)
        os.close(master)
    screen = _screen(b"".join(chunks).decode())
    assert sorted(line.rsplit("  ", 1)[0] for line in screen) == sorted(
        f"✓ done {worker}-{n}" for worker in range(6) for n in range(40)
    )


def test_a_terminal_gone_mid_run_ends_the_display_not_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session closed while a deploy runs (writes to its terminal fail with EIO): the steps go on."""
    monkeypatch.setenv("TERM", "xterm-256color")
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8")
    terminal = Terminal(stream)
    done = []
    try:
        with progress.reporting(terminal):
            with progress.step("staging the project"):
                os.close(master)  # the terminal goes away
                done.append("staged")
            for n in range(3):
                with progress.step(f"building member{n}"):
                    done.append(f"member{n}")
        terminal.close()
    finally:
        with contextlib.suppress(OSError):
            stream.close()
    assert done == ["staged", "member0", "member1", "member2"]


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    made = make_project("workspace")
    _with_hooks(made, "echo migrated", "test -d .")
    return made


def test_a_cold_deploy_on_a_terminal_shows_each_step(project: Path, tmp_path: Path) -> None:
    env = tmp_path / "live" / ".venv"
    shown = on_terminal("deploy", project, "--env", env)

    assert shown.code == 0, shown.raw
    steps = _steps(shown)
    installed = _third_party(env, {"core", "webapp"})
    assert installed == 3  # tinyweb, tinyutil, tinydb: what the lock installs besides the members
    for expected in (
        "✓ staging the project",
        "✓ building core",
        "✓ building webapp",
        f"✓ installing {installed} packages",
        "✓ installing core, webapp",
        "✓ smoke check",
        "✓ sealing",
        "✓ hook: echo migrated",
        "✓ hook: test -d .",
    ):
        assert expected in steps, (expected, shown.lines)
    # In the order they ran (the members build beside the sync; the hooks after the switch).
    assert steps.index("✓ staging the project") < steps.index("✓ building webapp")
    assert steps.index("✓ installing core, webapp") < steps.index("✓ smoke check")
    assert steps.index("✓ sealing") < steps.index("✓ hook: echo migrated") < steps.index("✓ hook: test -d .")
    # Nothing but the steps on the terminal; the result on stdout, as off a terminal.
    assert [line for line in shown.lines if line[:2] not in ("✓ ", "✗ ")] == []
    assert shown.out.startswith(f"{env} -> generation 1 [")
    assert "  hook ok: echo migrated" in shown.out


def test_a_member_change_shows_its_build_and_the_clone(project: Path, tmp_path: Path) -> None:
    env = tmp_path / ".venv"
    assert vk_process("deploy", project, "--env", env).code == 0
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + "\nCHANGED = True\n")
    commit_all(project)

    shown = on_terminal("deploy", project, "--env", env)
    steps = _steps(shown)

    assert "✓ cloning generation 1" in steps, steps
    assert "✓ building webapp" in steps
    assert "✓ building core" not in steps  # reused from the wheel cache
    assert "✓ installing webapp" in steps, shown.raw
    assert "✓ hook: echo migrated" in steps


def test_a_failing_hook_is_marked_and_the_display_is_gone_before_the_error(
    project: Path, tmp_path: Path
) -> None:
    _with_hooks(project, "exit 3")
    env = tmp_path / ".venv"
    shown = on_terminal("deploy", project, "--env", env)

    assert shown.code == 4, shown.lines
    steps = _steps(shown)
    assert "✗ hook: exit 3 (exited 3)" in steps, steps
    errors = [i for i, line in enumerate(shown.lines) if line.startswith("error: post-deploy hook `exit 3`")]
    assert len(errors) == 1, shown.lines
    # The error comes after the last step, on a line of its own (the live display was stopped).
    last_step = max(i for i, line in enumerate(shown.lines) if line[:2] in ("✓ ", "✗ "))
    assert errors[0] > last_step


@pytest.mark.parametrize("flag", ["--quiet", "-q", "--json"])
def test_quiet_and_json_on_a_terminal_print_what_a_pipe_gets(
    project: Path, tmp_path: Path, flag: str
) -> None:
    piped = vk_process("deploy", project, "--env", tmp_path / "piped" / ".venv", flag)
    shown = on_terminal("deploy", project, "--env", tmp_path / "tty" / ".venv", flag)

    assert piped.code == shown.code == 0, (piped.err, shown.raw)
    assert piped.err == ""
    assert shown.raw == b""  # not one byte on the terminal
    if flag == "--json":
        assert json.loads(shown.out)["changed"] is True
        assert json.loads(piped.out).keys() == json.loads(shown.out).keys()
    else:
        same = _without_times(piped.out).replace("/piped/", "/tty/")
        assert _without_times(shown.out) == same


def test_an_error_with_quiet_on_a_terminal_is_the_error_off_a_terminal(project: Path, tmp_path: Path) -> None:
    """stderr a pipe, and --quiet on a terminal: the same bytes for a failure (the error and its hint,
    no progress); without --quiet the terminal shows the steps before that same error."""
    _with_hooks(project, "echo broken; exit 3")
    piped = vk_process("deploy", project, "--env", tmp_path / "piped" / ".venv")
    quiet = on_terminal("deploy", project, "--env", tmp_path / "quiet" / ".venv", "--quiet")
    shown = on_terminal("deploy", project, "--env", tmp_path / "shown" / ".venv")

    assert piped.code == quiet.code == shown.code == 4
    assert piped.err.startswith("error: post-deploy hook `echo broken; exit 3` exited 3")
    assert quiet.raw.decode().replace("\r\n", "\n").replace("/quiet/", "/piped/") == piped.err
    assert quiet.out == piped.out == ""
    errors = [line for line in shown.lines if line[:2] not in ("✓ ", "✗ ")]
    assert "\n".join(errors).replace("/shown/", "/piped/") == piped.err.rstrip("\n")


def test_rich_is_not_imported_off_a_terminal_nor_when_nothing_changes(project: Path, tmp_path: Path) -> None:
    env = tmp_path / ".venv"
    modules = tmp_path / "modules"
    program = ("-c", _MODULES_PROGRAM, str(modules))
    cold = subprocess.run(
        [sys.executable, *program, "deploy", str(project), "--env", str(env)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cold.returncode == 0, cold.stderr
    assert "venvkeeper.generations.engine" in modules.read_text().split()  # it did build
    assert [m for m in modules.read_text().split() if m.split(".")[0] == "rich"] == []

    # On a terminal, a no-op the stamp cannot answer (a file touched: the full deploy runs) has no
    # step to show, so rich is never loaded; nor on the fast path.
    os.utime(project / "pyproject.toml")
    for attempt in range(2):
        again = on_terminal("deploy", project, "--env", env, program=program)
        assert again.code == 0, again.raw
        assert again.raw == b""
        assert "unchanged" in again.out
        loaded = modules.read_text().split()
        if attempt == 0:  # the full deploy ran (the stamp no longer matched), and decided
            assert "venvkeeper.deploy.converge" in loaded
        assert [m for m in loaded if m.split(".")[0] == "rich"] == []

    # ...and the same terminal does load it for a deploy with steps (the check above can fail).
    init = project / "packages" / "core" / "src" / "core" / "__init__.py"
    init.write_text(init.read_text() + "\n# edited\n")
    commit_all(project)
    changed = on_terminal("deploy", project, "--env", env, program=program)
    assert changed.code == 0, changed.raw
    assert "rich" in modules.read_text().split()


def test_quiet_is_in_the_help_of_the_five_commands(tmp_path: Path) -> None:
    for command in ("deploy", "install", "heal", "pack", "update"):
        shown = vk_process(command, "--help")
        assert shown.code == 0
        assert "-q, --quiet" in shown.out, command
        assert "Show no progress on a terminal" in shown.out, command


def test_pack_and_install_on_a_terminal_show_their_steps(project: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "app.tar.gz"
    packed = on_terminal("pack", project, "-o", bundle)

    assert packed.code == 0, packed.lines
    steps = _steps(packed)
    for expected in (
        "✓ staging the project",
        "✓ checking the lock",
        "✓ fetching 3 files",  # tinyweb, tinyutil, tinydb
        "✓ building core",
        "✓ building webapp",
        "✓ writing app.tar.gz",
    ):
        assert expected in steps, (expected, packed.lines)
    assert [line for line in packed.lines if line[:2] not in ("✓ ", "✗ ")] == []
    piped = vk_process("pack", project, "-o", tmp_path / "piped.tar.gz")
    assert piped.err == ""
    assert bundle.read_bytes() == (tmp_path / "piped.tar.gz").read_bytes()

    env = tmp_path / "srv" / ".venv"
    installed = on_terminal("install", bundle, "--env", env, "--hooks-dir", project)

    assert installed.code == 0, installed.lines
    steps = _steps(installed)
    packages = len(list(site_packages(env).glob("*.dist-info")))
    assert packages == 5  # the bundle's three wheels and its two members
    for expected in (
        "✓ checking app.tar.gz",
        f"✓ installing {packages} packages",
        "✓ smoke check",
        "✓ sealing",
        "✓ hook: echo migrated",
        "✓ hook: test -d .",
    ):
        assert expected in steps, (expected, installed.lines)
    assert installed.out.startswith(f"{env} -> generation 1 [")
    quiet = on_terminal("install", bundle, "--env", tmp_path / "quiet" / ".venv", "-q")
    assert (quiet.code, quiet.raw) == (0, b"")


def test_heal_on_a_terminal_shows_the_repair_and_the_check(tmp_path: Path) -> None:
    env = tmp_path / "env"
    run([find_uv(), "venv", "--python", sys.executable, env])
    run([find_uv(), "pip", "install", "--python", env / "bin" / "python", "tinyweb"])
    copy = tmp_path / "copy"
    run(["cp", "-a", env, copy])  # its scripts name the original's interpreter: heal rewrites them

    healed = on_terminal("heal", "--env", copy)

    assert healed.code == 0, healed.lines
    assert _steps(healed) == ["✓ repairing in place", "✓ checking again"], healed.lines
    assert "repaired" in healed.out


def test_update_on_a_terminal_shows_its_steps(
    make_project: Callable[..., Path], tmp_path: Path, publish: Callable[..., Path]
) -> None:
    project = make_project("updatable")
    add_remote(project, tmp_path)
    env = tmp_path / "srv" / ".venv"
    assert vk_process("deploy", project, "--env", env).code == 0
    publish("tinydb", "1.2.1")

    updated = on_terminal("update", project, "--env", env)

    assert updated.code == 0, updated.lines
    steps = _steps(updated)
    for expected in (
        "✓ preflight checks",
        "✓ re-locking within the patch policy",
        "✓ building the test environment of the current lock",
        "✓ tests on the current lock: python check_deps.py",
        "✓ building the next generation",
        "✓ installing 1 package",  # tinydb 1.2.1, into the clone of the live generation
        "✓ tests on the updated lock: python check_deps.py",
        "✓ shipping: commit, push, switch",
        "✓ hook: python check_deps.py --live",
        "✓ recording the run and mailing the report",
    ):
        assert expected in steps, (expected, updated.lines)
    assert steps.index("✓ preflight checks") < steps.index("✓ re-locking within the patch policy")
    assert steps.index("✓ tests on the updated lock: python check_deps.py") < steps.index(
        "✓ shipping: commit, push, switch"
    )
    assert steps[-1] == "✓ recording the run and mailing the report"


def test_deploy_check_on_a_terminal_prints_the_same_plan(project: Path, tmp_path: Path) -> None:
    """--check changes nothing and prints its plan on stdout; on a terminal its steps go to stderr."""
    piped = vk_process("deploy", project, "--env", tmp_path / "piped" / ".venv", "--check")
    shown = on_terminal("deploy", project, "--env", tmp_path / "tty" / ".venv", "--check")

    assert piped.code == shown.code == 6, (piped.err, shown.lines)
    assert piped.err == ""
    assert _without_times(shown.out) == _without_times(piped.out).replace("/piped/", "/tty/")
    assert "✓ staging the project" in _steps(shown)
    assert [line for line in shown.lines if line[:2] not in ("✓ ", "✗ ")] == []
    assert not (tmp_path / "tty").exists()
