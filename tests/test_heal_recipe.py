"""docs/recipes/heal-at-boot.md does what it says: its unit, profile hook and pip wrapper, run for real.

The unit is parsed (ordering before the app, the command line click accepts) and its ExecStart run
with the recipe's paths swapped for this machine's; the profile hook and the pip wrapper run under
``sh`` with ``HOME`` a test user's. /opt/venvkeeper and /opt/python become the installed venvkeeper and a
temporary link root.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.process import run
from support.pythons import install_store_python, real_python
from test_docs_recipes import _EXEC as EXEC
from test_docs_recipes import RECIPES, _stub_exec, _unit_texts, blocks, invocations, parse, units
from venvkeeper.gateways.uv import find_uv

RECIPE = (RECIPES / "heal-at-boot.md").read_text()
VENVKEEPER = "/opt/venvkeeper/bin/venvkeeper"


def _installed() -> str:
    script = Path(sys.executable).parent / "venvkeeper"
    if not script.exists():
        pytest.skip("the venvkeeper console script is not installed beside this interpreter")
    return str(script)


def _sh_block(first_line: str) -> str:
    found = [b.text for b in blocks(RECIPE) if b.lang == "sh" and b.text.startswith(first_line)]
    assert len(found) == 1, first_line
    return found[0]


def _here(text: str, links: Path) -> str:
    return text.replace(VENVKEEPER, _installed()).replace("/opt/python", str(links))


@pytest.fixture
def py311() -> Path:
    found = real_python("3.11")
    if found is None:
        pytest.skip("CPython 3.11 not found under pyenv or on PATH")
    return found


def _sh(script: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script, "sh", *args],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_unit_runs_heal_if_needed_before_the_app() -> None:
    unit = units(RECIPE)["pythonlibs-heal.service"]

    assert unit.get("Service", "Type") == "oneshot"
    assert "webapp.service" in unit.get("Unit", "Before").split()
    assert "webapp.service" in unit.get("Install", "RequiredBy").split()
    [args] = invocations(unit.get("Service", "ExecStart"))
    ctx = parse(args)
    assert ctx.info_name == "heal"
    assert ctx.params["if_needed"] is True
    assert ctx.params["envs_from"] == Path("/etc/pythonlibs/envs.txt")
    assert unit.get("Service", "Environment") == "VENVKEEPER_LINK_ROOT=/opt/python"


def test_the_unit_s_command_heals_the_listed_environments(py311: Path, tmp_path: Path) -> None:
    unit = units(RECIPE)["pythonlibs-heal.service"]
    links, listing = tmp_path / "links", tmp_path / "envs.txt"
    envs = [tmp_path / f"u{i}" / ".pythonlibs" for i in range(3)]
    for env in envs:
        run([find_uv(), "venv", "--quiet", "--python", py311, env])
    listing.write_text("".join(f"{env}\n" for env in envs))
    command = _here(unit.get("Service", "ExecStart"), links).replace("/etc/pythonlibs/envs.txt", str(listing))
    environ = dict(os.environ, VENVKEEPER_LINK_ROOT=str(links))

    first = subprocess.run(shlex.split(command), env=environ, capture_output=True, text=True, check=False)

    assert first.returncode == 0, first.stdout + first.stderr
    summary = json.loads(first.stdout.splitlines()[-1])
    assert (summary["summary"], summary["environments"], summary["healed"]) == (True, 3, 3)
    assert all(os.readlink(env / "bin" / "python").startswith(f"{links}/python3.11/") for env in envs)
    again = subprocess.run(shlex.split(command), env=environ, capture_output=True, text=True, check=False)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_the_profile_hook_is_silent_until_the_environment_needs_a_heal(py311: Path, tmp_path: Path) -> None:
    home, links = tmp_path / "home", tmp_path / "links"
    hook = _here(_sh_block("# /etc/profile.d/pythonlibs-heal.sh"), links)
    assert _sh(hook, home).stdout == ""  # no ~/.pythonlibs: nothing to do
    run([find_uv(), "venv", "--quiet", "--python", py311, home / ".pythonlibs"])

    first = _sh(hook, home)
    assert first.returncode == 0, first.stderr
    assert "healed" in first.stdout
    quiet = _sh(hook, home)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_the_pip_wrapper_heals_before_pip_runs(py311: Path, tmp_path: Path) -> None:
    home, links = tmp_path / "home", tmp_path / "links"
    run([py311, "-m", "venv", home / ".pythonlibs"])  # with pip, from ensurepip's bundled wheel
    wrapper = _here(_sh_block("#!/bin/sh\n# /usr/local/bin/pip"), links)
    (home / ".pythonlibs" / "lib64").unlink()

    ran = _sh(wrapper, home, "--version")

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith("pip ")
    assert "create-lib64" in ran.stderr  # heal's report went to stderr, pip's output is pip's
    assert (home / ".pythonlibs" / "lib64").is_symlink()
    again = _sh(wrapper, home, "--version")
    assert again.stderr == "" and again.stdout.startswith("pip ")


def test_a_collected_store_entry_is_named_by_doctor_and_the_recipe_s_ln_repairs_it(
    py311: Path, tmp_path: Path
) -> None:
    """The section on a store entry collected before the link moved: doctor's finding, then its ln -sfn."""
    home, links = tmp_path / "home", tmp_path / "links"
    store = tmp_path / "nix" / "store"
    old = store / f"{'a' * 32}-python3-3.11.7"
    install_store_python(old, py311)
    run([old / "bin" / "python3.11", "-m", "venv", "--without-pip", home / ".pythonlibs"])
    hook = _here(_sh_block("# /etc/profile.d/pythonlibs-heal.sh"), links)
    assert "healed" in _sh(hook, home).stdout
    shutil.rmtree(old)

    doctor = subprocess.run(
        [_installed(), "doctor", "--env", home / ".pythonlibs", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert [f["code"] for f in json.loads(doctor.stdout)["findings"]] == ["interpreter-link-dangling"]
    new = store / f"{'b' * 32}-python3-3.11.9"
    install_store_python(new, py311)
    repoint = _here(_sh_block("ln -sfn "), links).replace("/nix/store/<new-hash>-python3-3.11.9", str(new))

    assert _sh(repoint, home).returncode == 0
    assert os.readlink(links / "python3.11") == str(new)
    quiet = _sh(hook, home)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    ran = run([home / ".pythonlibs" / "bin" / "python", "-c", "import sys; print(sys.prefix)"])
    assert ran.stdout.strip() == str(home / ".pythonlibs")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """As test_docs_recipes.py does for systemd.md: Exec*= executables replaced by stubs of the same name."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    files = []
    for name, text in _unit_texts(RECIPE).items():
        files.append(tmp_path / name)
        files[-1].write_text(EXEC.sub(lambda m: _stub_exec(m, stubs), text))

    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    output = proc.stdout + proc.stderr
    assert [Path(f).name for f in files] == ["pythonlibs-heal.service"]
    assert proc.returncode == 0, output
    assert not re.search(r"Unknown key|Failed to parse|ignoring|Refusing", output), output
