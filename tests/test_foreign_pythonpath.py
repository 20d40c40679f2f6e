"""venvkeeper under a caller's ``PYTHONPATH`` that names another minor's standard library.

A hosting platform sets one for its users' code; Python then loads ``re`` from it and stops at
``AssertionError: SRE module mismatch`` before venvkeeper's first line runs (gateways/selfexec.py).
Every command runs here as a real process, through the installed console script, under such a path
(and one holding a ``click`` that refuses to import), and must work as it does without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support.pythons import real_python
from venvkeeper.cli import commands
from venvkeeper.gateways import selfexec
from venvkeeper.gateways.python import run_python
from vk import Outcome

_HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _script() -> list[str]:
    installed = Path(sys.executable).parent / "venvkeeper"
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "venvkeeper"]


@pytest.fixture
def foreign() -> str:
    """A PYTHONPATH naming another minor's standard library; this interpreter breaks under it."""
    for minor in ("3.10", "3.12", "3.13", "3.11"):
        found = real_python(minor) if minor != _HERE else None
        if found is None:
            continue
        stdlib = found.resolve().parent.parent / "lib" / f"python{minor}"
        if not (stdlib / "re").exists() and not (stdlib / "re.py").exists():
            continue
        broken = subprocess.run(
            [sys.executable, "-c", "import re, enum, json"],
            env={**os.environ, "PYTHONPATH": str(stdlib)},
            capture_output=True,
            text=True,
            check=False,
        )
        # The premise: without venvkeeper's isolation, this interpreter cannot work under it.
        assert broken.returncode != 0, f"{stdlib} does not break Python {_HERE}"
        return str(stdlib)
    pytest.skip(f"no CPython other than {_HERE} with its standard library found")


def _vk(pythonpath: str, *args: str | Path, cwd: Path | None = None) -> Outcome:
    proc = subprocess.run(
        [*_script(), *map(str, args)],
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "SRE module mismatch" not in proc.stderr
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize("name", sorted(commands.cli.commands))
def test_every_command_s_help_works_under_another_minor_s_stdlib(name: str, foreign: str) -> None:
    outcome = _vk(foreign, name, "--help")

    assert outcome.code == 0, outcome.err
    assert f"Usage: venvkeeper {name}" in outcome.out


def test_the_commands_work_under_another_minor_s_stdlib(
    foreign: str, make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project("single")
    (tmp_path / "keys").mkdir()
    env, installed, bundle = tmp_path / "srv" / ".venv", tmp_path / "inst" / ".venv", tmp_path / "app.tar.gz"
    ok: list[tuple[str | Path, ...]] = [
        ("deploy", project, "--env", env, "--json"),
        ("status", "--env", env),
        ("verify", "--env", env),
        ("verify", "--env", env, "--project", project),
        ("doctor", "--env", env),
        ("heal", "--env", env),
        ("heal", "--if-needed", "--env", env, "--env", env),
        ("export", project, "--format", "requirements", "-o", tmp_path / "requirements.txt"),
        ("keygen", tmp_path / "keys" / "release"),
        ("pack", project, "-o", bundle, "--sign", tmp_path / "keys" / "release"),
        (
            "install",
            bundle,
            "--env",
            installed,
            "--python",
            sys.executable,
            "--public-key",
            tmp_path / "keys" / "release.pub",
        ),
        ("receipt", "--env", env, "--key", tmp_path / "keys" / "release", "-o", tmp_path / "receipt.json"),
        ("update", "--env", env, "--history"),
        ("status", "--env", installed),
    ]
    for args in ok:
        outcome = _vk(foreign, *args)
        assert outcome.code == 0, f"{args}: {outcome.out}{outcome.err}"
    (tmp_path / "osv").mkdir()
    record = {
        "id": "OSV-TEST-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "not-installed-here"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    (tmp_path / "osv" / "OSV-TEST-1.json").write_text(json.dumps(record))
    audit = _vk(foreign, "audit", "--env", env, "--osv", tmp_path / "osv")
    assert audit.code == 0, audit.out + audit.err


def test_a_shadowing_package_on_pythonpath_is_not_loaded(tmp_path: Path) -> None:
    poisoned = tmp_path / "site" / "click"
    poisoned.mkdir(parents=True)
    (poisoned / "__init__.py").write_text("raise ImportError('the caller\\'s click was loaded')\n")

    outcome = _vk(str(poisoned.parent), "doctor", "--help")

    assert outcome.code == 0, outcome.err
    assert "Usage: venvkeeper doctor" in outcome.out


def test_interpreters_venvkeeper_asks_do_not_inherit_pythonpath(
    foreign: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", foreign)
    monkeypatch.setenv("PYTHONHOME", "/nonexistent")

    ran = run_python(
        sys.executable,
        [],
        "import os; print(os.environ.get('PYTHONPATH'), os.environ.get('PYTHONHOME'))",
        timeout=60,
    )

    assert (ran.returncode, ran.stdout.strip()) == (0, "None None"), ran.stderr


def test_a_checkout_found_through_the_dropped_pythonpath_still_runs(foreign: str, tmp_path: Path) -> None:
    """venvkeeper run from a source tree on PYTHONPATH: the isolated process runs that same tree."""
    source = Path(__import__("venvkeeper").__file__).parent
    copy = tmp_path / "src" / "venvkeeper"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    init = copy / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.9.9+checkout-'))

    proc = subprocess.run(
        [sys.executable, "-c", "import sys, venvkeeper.cli.main as m; sys.exit(m.main())", "--version"],
        env={**os.environ, "PYTHONPATH": f"{tmp_path / 'src'}:{foreign}"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    assert "9.9.9+checkout-" in proc.stdout


def test_only_settings_that_change_what_loads_cost_a_second_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in selfexec.START_UP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONUSERBASE", "/home/u/.pythonlibs")  # a venv ignores the user site
    monkeypatch.setenv("PYTHONSTARTUP", "/etc/pythonrc")
    assert selfexec.foreign_settings() == []

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert selfexec.foreign_settings() == ["PYTHONPATH"]
    assert "PYTHONUSERBASE" not in selfexec.clean_environ()
