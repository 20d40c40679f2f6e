"""The recipes in docs/recipes/ stay true for this venvkeeper.

Every ``venvkeeper ...`` command line in their code blocks (shell lines, the strings of a Python
block, a unit's ``Exec*=``) is parsed by the real CLI's click command (``make_context``: options,
values and required arguments, without running it). Every unit file parses as INI with the sections
systemd needs, and ``systemd-analyze verify`` accepts it when the tool is there. The path unit's
claim is checked with real inotify watches around real deploys: a switch is one ``IN_MOVED_TO`` in
the directory holding ``--env`` and nothing on a watch made through the ``--env`` symlink.
"""

from __future__ import annotations

import ast
import configparser
import ctypes
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from venvkeeper.cli import commands
from vk import commit_all, vk

RECIPES = Path(__file__).resolve().parents[1] / "docs" / "recipes"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_UNIT_PATH = re.compile(r"# (/etc/systemd/system/[\w@.-]+\.(service|path|timer))")
_EXEC = re.compile(r"^(Exec\w+)=(.*)$", re.M)
_SHELL_OPERATOR = re.compile(r"[();<>|&]+")
# The sections a unit needs before systemd loads it, by type; [Install] when it is enabled.
_SECTIONS = {"service": {"Unit", "Service"}, "path": {"Unit", "Path"}, "timer": {"Unit", "Timer"}}


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # the first line of the block's content
    lang: str
    text: str


def blocks(text: str, doc: str = "") -> list[Block]:
    return [
        Block(doc, text.count("\n", 0, m.start()) + 2, m.group(1), m.group(2)) for m in _FENCE.finditer(text)
    ]


def command_texts(block: Block) -> list[str]:
    """The shell command lines of a block: sh lines, a Python block's strings, a unit's Exec*= values."""
    if block.lang == "python":
        tree = ast.parse(block.text)
        return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    if block.lang == "ini":
        return [m.group(2) for m in _EXEC.finditer(block.text)]
    if block.lang == "sh":
        return block.text.replace("\\\n", " ").splitlines()
    return []


def invocations(command: str) -> list[list[str]]:
    """The arguments after each ``venvkeeper`` (or ``.../bin/venvkeeper``) in a shell command line."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    found = []
    for i, token in enumerate(tokens):
        if token.lstrip("+-@!:") in ("venvkeeper",) or token.endswith("/bin/venvkeeper"):
            args: list[str] = []
            for arg in tokens[i + 1 :]:
                if _SHELL_OPERATOR.fullmatch(arg):
                    break
                args.append(arg)
            found.append(args)
    return found


def parse(args: list[str]) -> click.Context:
    """Parse a venvkeeper command line with its click command, without running it."""
    if not args or args[0] not in commands.cli.commands:
        raise click.UsageError(f"no such command: {args[:1]}")
    if {"-h", "--help"} & set(args):
        raise click.UsageError("--help proves nothing about the other options")
    name, rest = args[0], args[1:]
    return commands.cli.commands[name].make_context(name, rest)


def problems(text: str, doc: str = "") -> tuple[list[str], list[click.Context]]:
    """The command lines click refuses (one line each), and the contexts of those it accepts."""
    refused: list[str] = []
    parsed: list[click.Context] = []
    for block in blocks(text, doc):
        for command in command_texts(block):
            for args in invocations(command):
                try:
                    parsed.append(parse(args))
                except click.ClickException as exc:
                    refused.append(
                        f"{doc}:{block.line}: venvkeeper {shlex.join(args)}: {exc.format_message()}"
                    )
    return refused, parsed


def units(text: str) -> dict[str, configparser.ConfigParser]:
    """The unit files of a recipe, by name: ini blocks that start with ``# /etc/systemd/system/NAME``."""
    found = {}
    for block in blocks(text):
        if block.lang != "ini":
            continue
        first = block.text.splitlines()[0]
        match = _UNIT_PATH.fullmatch(first)
        assert match, f"an ini block names its file first: {first!r}"
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"))
        parser.optionxform = str  # type: ignore[assignment, method-assign]  # systemd's keys are case-sensitive
        parser.read_string(block.text)
        found[Path(match.group(1)).name] = parser
    return found


def _recipe(name: str) -> str:
    return (RECIPES / name).read_text()


def _commands_in(name: str) -> list[click.Context]:
    refused, parsed = problems(_recipe(name), name)
    assert refused == []
    return parsed


# -- command lines -----------------------------------------------------------------------------


@pytest.mark.parametrize("doc", sorted(p.name for p in RECIPES.glob("*.md")))
def test_every_venvkeeper_command_line_in_a_recipe_parses(doc: str) -> None:
    refused, parsed = problems(_recipe(doc), doc)

    assert refused == []
    assert parsed, f"{doc} shows no venvkeeper command line"


def test_the_recipes_show_the_commands_they_are_about() -> None:
    def shown(doc: str) -> set[tuple[str, ...]]:
        return {
            (ctx.info_name or "", *sorted(k for k, v in ctx.params.items() if v not in (None, False, ())))
            for ctx in _commands_in(doc)
        }

    assert ("deploy", "check", "env", "project_dir") in shown("bundlewrap.md")
    assert ("deploy", "env", "no_hooks", "project_dir") in shown("bundlewrap.md")
    assert {c[0] for c in shown("systemd.md")} >= {"deploy", "update"}
    assert {c[0] for c in shown("service-user.md")} >= {"deploy", "status"}


def test_the_bundlewrap_action_checks_the_deploy_it_runs() -> None:
    """``unless`` is the action's own deploy with --check; git_deploy triggers the action and it needs it."""
    (block,) = [b for b in blocks(_recipe("bundlewrap.md")) if b.lang == "python"]
    items = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(block.text).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    (action,) = items["actions"].values()
    (deploy,) = (parse(args) for args in invocations(action["command"]))
    (check,) = (parse(args) for args in invocations(action["unless"]))

    assert (deploy.info_name, deploy.params["check"], check.params["check"]) == ("deploy", False, True)
    for key in ("project_dir", "env", "groups", "python", "in_place"):
        assert check.params[key] == deploy.params[key], key
    (path, checkout) = next(iter(items["git_deploy"].items()))
    assert checkout["triggers"] == ["action:webapp_deploy"] and action["triggered"] is True
    assert f"git_deploy:{path}" in action["needs"]
    assert str(deploy.params["project_dir"]) == path


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("venvkeeper deploy . --env /x --no-such-option", "No such option '--no-such-option'"),
        ("/opt/venvkeeper/bin/venvkeeper deploy . --env /x --keep -1", "'--keep'"),
        ("venvkeeper update . --env /x --policy tiny", "'--policy'"),
        ("sudo -u app venvkeeper deploy /opt/app", "Missing option '--env'"),
        ("venvkeeper deplyo . --env /x", "no such command"),
        ("venvkeeper deploy --help", "--help proves nothing"),
    ],
)
def test_a_wrong_command_line_is_refused(line: str, complaint: str) -> None:
    for text in (f"```sh\n{line}  # a comment\n```\n", f"```python\nx = {{'command': {line!r}}}\n```\n"):
        refused, parsed = problems(text, "bad.md")

        assert parsed == []
        assert len(refused) == 1
        assert refused[0].startswith("bad.md:2: venvkeeper ")
        assert complaint in refused[0]


def test_a_unit_with_a_wrong_option_in_exec_start_is_refused() -> None:
    text = _recipe("systemd.md").replace(
        "--env /var/lib/webapp/venv/current\n", "--envv /var/lib/webapp/venv/current\n", 1
    )

    refused, _ = problems(text, "systemd.md")

    assert len(refused) == 1
    assert "No such option '--envv'" in refused[0]


# -- unit files --------------------------------------------------------------------------------


def test_every_unit_file_has_the_sections_systemd_needs() -> None:
    text = _recipe("systemd.md")
    found = units(text)
    enabled = {
        name for line in re.findall(r"systemctl enable --now ([\w@. -]+)", text) for name in line.split()
    }

    assert set(found) >= {"webapp-deploy.service", "webapp-restart.path", "webapp-update.timer"}
    assert enabled <= set(found)
    for name, unit in found.items():
        kind = name.rsplit(".", 1)[1]
        assert _SECTIONS[kind] <= set(unit.sections()), name
        if name in enabled or kind in ("path", "timer"):
            assert unit.get("Install", "WantedBy"), name
        if kind in ("path", "timer"):  # the service it starts: Unit=, else the same name
            section = kind.capitalize()
            assert unit.get(section, "Unit", fallback=name.rsplit(".", 1)[0] + ".service") in found, name
        if kind == "service":
            assert unit.get("Service", "ExecStart").startswith("/"), name
    assert found["webapp-restart.path"].get("Path", "PathChanged")
    assert found["webapp-update.timer"].get("Timer", "OnCalendar")


def test_the_units_that_run_venvkeeper_name_it_with_a_valid_command_line() -> None:
    found = units(_recipe("systemd.md"))
    ran = {}
    for name, unit in found.items():
        if unit.has_option("Service", "ExecStart"):
            for args in invocations(unit.get("Service", "ExecStart")):
                ran[name] = parse(args)

    assert {n: c.info_name for n, c in ran.items()} == {
        "webapp-deploy.service": "deploy",
        "webapp-update.service": "update",
    }
    # The path unit watches the directory that holds --env (see the inotify test below).
    env = ran["webapp-deploy.service"].params["env"]
    assert found["webapp-restart.path"].get("Path", "PathChanged") == str(env.parent)
    assert ran["webapp-update.service"].params["env"] == env


def test_mail_settings_are_in_an_environment_file_never_in_a_unit() -> None:
    found = units(_recipe("systemd.md"))

    assert found["webapp-update.service"].get("Service", "EnvironmentFile").startswith("/etc/")
    for name, unit in found.items():
        for section in unit.sections():
            for key, value in unit.items(section):
                assert "VENVKEEPER_SMTP" not in f"{key}={value}", name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """The executables named in Exec*= are replaced by stubs of the same name (verify checks that
    they exist and are executable, and /opt/venvkeeper is not on this machine); the rest is as shown."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    files = []
    for name, text in _unit_texts(_recipe("systemd.md")).items():
        files.append(tmp_path / name)
        files[-1].write_text(_EXEC.sub(lambda m: _stub_exec(m, stubs), text))

    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert not re.search(r"Unknown key|Failed to parse|ignoring|Refusing", output), output


def _unit_texts(text: str) -> dict[str, str]:
    found = {}
    for block in blocks(text):
        match = _UNIT_PATH.fullmatch(block.text.splitlines()[0]) if block.lang == "ini" else None
        if match:
            found[Path(match.group(1)).name] = block.text
    return found


def _stub_exec(match: re.Match[str], stubs: Path) -> str:
    program, _, rest = match.group(2).partition(" ")
    stub = stubs / Path(program).name
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    return f"{match.group(1)}={stub} {rest}"


# -- the path unit's inotify claim ---------------------------------------------------------------

# systemd's src/core/path.c, flags_table[PATH_CHANGED]: the mask of the watch on the path itself,
# the only watch whose events trigger the unit (path_spec_fd_event compares the wd with primary_wd).
IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x4, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
PATH_CHANGED = (
    IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_CREATE
    | IN_DELETE
    | IN_MOVED_FROM
    | IN_MOVED_TO
)
_EVENT = struct.Struct("iIII")


class Inotify:
    """Linux inotify through libc, non-blocking: events are queued by the system call that causes
    them, so after a command returns, :meth:`events` has all of its events."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        self.paths: dict[int, str] = {}

    def watch(self, path: Path) -> None:
        """Like systemd's ``inotify_add_watch``: a symlink is followed (no IN_DONT_FOLLOW)."""
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), PATH_CHANGED)
        assert wd >= 0, os.strerror(ctypes.get_errno())
        self.paths[wd] = str(path)

    def events(self) -> list[tuple[str, int, str]]:
        """(watched path, mask, name) of each event since the last call."""
        found = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + size].rstrip(b"\0").decode()
                found.append((self.paths[wd], mask, name))
                offset += _EVENT.size + size

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def inotify() -> Iterator[Inotify]:
    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux's")
    watcher = Inotify()
    yield watcher
    watcher.close()


def _edit_member(project: Path, text: str) -> None:
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + f"# {text}\n")
    commit_all(project, text)


def test_a_switch_is_one_moved_to_in_the_env_directory_and_nothing_through_the_symlink(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], inotify: Inotify
) -> None:
    project = make_project("workspace")
    env = tmp_path / "venv" / "current"  # the recipes' layout: the directory holds --env alone
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    inotify.watch(env)  # what PathChanged=/…/venv/current would watch: generation 1's directory
    inotify.watch(env.parent)  # PathChanged=/…/venv, as systemd.md has it
    switched = [(str(env.parent), IN_MOVED_TO, "current")]

    for args in (["deploy", project, "--env", env], ["status", "--env", env], ["verify", "--env", env]):
        assert vk(capsys, *args).code == 0
    assert vk(capsys, "deploy", project, "--env", env, "--check").code == 0
    assert inotify.events() == []

    _edit_member(project, "second")
    assert vk(capsys, "deploy", project, "--env", env, "--check").code == 6  # would change: no switch yet
    assert inotify.events() == []
    deployed = vk(capsys, "deploy", project, "--env", env)
    assert "-> generation 2 (was 1)" in deployed.out, deployed.err
    assert inotify.events() == switched

    assert vk(capsys, "rollback", "--env", env).code == 0
    assert inotify.events() == switched
    assert os.readlink(env).endswith("generations/0001")

    # A failing hook: switched to the new generation, then back. Both are IN_MOVED_TO "current", which
    # inotify merges into one when nobody read the first in between (inotify(7), "identical events").
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.venvkeeper.hooks]\npost-deploy = ['exit 1']\n")
    _edit_member(project, "third")
    assert vk(capsys, "deploy", project, "--env", env).code == 4
    assert inotify.events() == switched
    assert os.readlink(env).endswith("generations/0001")
