"""The hosting platform's heal (docs/doctor.md, docs/recipes/heal-at-boot.md): stable interpreter links,
``heal --if-needed`` and batches.

The interpreters are store copies of real CPythons under Nix-like entries
(``store/<hash>-python3-3.11.2``): Debian's 3.11.2 and pyenv's 3.11.7 are two real patch releases of
one minor, pyenv's 3.12 the next minor. Skipped, saying which is missing, without them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.process import run
from support.pythons import install_store_python, real_python
from venvkeeper.gateways.uv import find_uv
from vk import Outcome, run_in_env, snapshot, vk, vk_click

DEBIAN_311 = Path("/usr/bin/python3.11")


def _store_entry(store: Path, source: Path, tag: str, version: str) -> Path:
    """``store/<32 x tag>-python3-VERSION`` holding a copy of ``source``: its bin/python3."""
    entry = store / f"{tag * 32}-python3-{version}"
    install_store_python(entry, source, name="python3")
    return entry


def _version(python: Path) -> str:
    return run([python, "-c", "import platform; print(platform.python_version())"]).stdout.strip()


@pytest.fixture
def patches() -> tuple[Path, Path]:
    """Two real patch releases of CPython 3.11: (older, newer)."""
    newer = real_python("3.11")
    if not DEBIAN_311.exists() or newer is None:
        pytest.skip("two CPython 3.11 patch releases needed (/usr/bin/python3.11 and pyenv's 3.11)")
    if _version(DEBIAN_311) == _version(newer):
        pytest.skip(f"{DEBIAN_311} and {newer} are the same patch release")
    return DEBIAN_311, newer


@pytest.fixture
def py312() -> Path:
    found = real_python("3.12")
    if found is None:
        pytest.skip("CPython 3.12 not found under pyenv or on PATH")
    return found


def _venv(env: Path, python: Path, *packages: str) -> None:
    run([find_uv(), "venv", "--quiet", "--python", python, env])
    if packages:
        run([find_uv(), "pip", "install", "--quiet", "--python", env / "bin" / "python", *packages])


def _repoint(link: Path, target: Path) -> None:
    """What the platform does on a store upgrade: ``ln -sfn TARGET LINK``."""
    temporary = link.with_name(link.name + ".new")
    temporary.symlink_to(target)
    temporary.replace(link)


def _lines(outcome: Outcome) -> list[dict[str, Any]]:
    return [json.loads(line) for line in outcome.out.splitlines()]


def _runs(env: Path) -> str:
    ran = run_in_env(env, "tinyweb")
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.strip()


def _python_version(env: Path) -> str:
    return run(
        [env / "bin" / "python", "-c", "import platform; print(platform.python_version())"]
    ).stdout.strip()


# -- stable interpreter links ------------------------------------------------------------------


def test_a_patch_upgrade_through_the_link_root_is_one_repointed_link(
    patches: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older, newer = patches
    store, links, env = tmp_path / "store", tmp_path / "links", tmp_path / "srv" / ".venv"
    old_entry = _store_entry(store, older, "a", _version(older))
    _venv(env, old_entry / "bin" / "python3", "tinyweb==1.0.0")

    doctor = vk(capsys, "doctor", "--env", env, "--json")
    assert doctor.code == 0, doctor.out
    note = [f for f in doctor.json["findings"] if f["code"] == "versioned-interpreter"]
    assert len(note) == 1 and note[0]["severity"] == "note"
    assert old_entry.name in note[0]["seen"]

    healed = vk(capsys, "heal", "--env", env, "--link-root", links, "--json")

    assert healed.code == 0, healed.out + healed.err
    assert healed.json["changed"] is True
    assert healed.json["actions"][0]["action"] == "link-root"
    assert os.readlink(links / "python3.11") == str(old_entry)
    assert os.readlink(env / "bin" / "python") == f"{links}/python3.11/bin/python3"
    assert f"home = {links}/python3.11/bin" in (env / "pyvenv.cfg").read_text()
    assert _runs(env) == "tinyweb 1.0.0"
    again = vk(capsys, "doctor", "--env", env, "--json")
    assert again.code == 0 and again.json["findings"] == [], again.out
    quiet = vk(capsys, "heal", "--if-needed", "--env", env, "--link-root", links)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")

    # The store moves on to the next patch and collects the old entry; the platform re-points one link.
    new_entry = _store_entry(store, newer, "b", _version(newer))
    shutil.rmtree(old_entry)
    before = snapshot(env)
    _repoint(links / "python3.11", new_entry)

    assert _runs(env) == "tinyweb 1.0.0"
    assert _python_version(env) == _version(newer)
    quiet = vk(capsys, "heal", "--if-needed", "--env", env, "--link-root", links)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    assert vk(capsys, "doctor", "--env", env).code == 0
    assert snapshot(env) == before  # no heal touched it


def test_heal_keeps_the_platform_s_link_and_routes_through_it(
    patches: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older, newer = patches
    store, links, env = tmp_path / "store", tmp_path / "links", tmp_path / "app"
    old_entry = _store_entry(store, older, "a", _version(older))
    new_entry = _store_entry(store, newer, "b", _version(newer))
    links.mkdir()
    (links / "python3.11").symlink_to(new_entry)  # the platform's choice
    _venv(env, old_entry / "bin" / "python3")

    healed = vk(capsys, "heal", "--env", env, "--link-root", links, "--json")

    assert healed.code == 0, healed.out
    assert "link-root" not in [a["action"] for a in healed.json["actions"]]
    assert os.readlink(links / "python3.11") == str(new_entry)
    assert os.readlink(env / "bin" / "python") == f"{links}/python3.11/bin/python3"
    assert _python_version(env) == _version(newer)


def test_a_minor_upgrade_is_a_heal_onto_the_next_link(
    patches: tuple[Path, Path], py312: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, newer = patches
    store, links, env = tmp_path / "store", tmp_path / "links", tmp_path / "srv" / ".venv"
    entry311 = _store_entry(store, newer, "a", _version(newer))
    _venv(env, entry311 / "bin" / "python3", "tinyweb==1.0.0")
    assert vk(capsys, "heal", "--env", env, "--link-root", links).code == 0

    # The platform moves to 3.12: a new link; the 3.11 entry is collected, its link dangles.
    entry312 = _store_entry(store, py312, "c", _version(py312))
    (links / "python3.12").symlink_to(entry312)
    shutil.rmtree(entry311)
    assert not (env / "bin" / "python").exists()
    assert vk(capsys, "heal", "--if-needed", "--env", env, "--link-root", links, "--dry-run").code == 1

    healed = vk(
        capsys,
        "heal",
        "--env",
        env,
        "--link-root",
        links,
        "--python",
        links / "python3.12/bin/python3",
        "--json",
    )

    assert healed.code == 0, healed.out + healed.err
    assert "rebuild" in [a["action"] for a in healed.json["actions"]]
    assert os.readlink(env / "bin" / "python") == f"{links}/python3.12/bin/python3"
    assert sorted(p.name for p in (env / "lib").iterdir()) == ["python3.12"]
    assert _runs(env) == "tinyweb 1.0.0"
    quiet = vk(capsys, "heal", "--if-needed", "--env", env, "--link-root", links)
    assert (quiet.code, quiet.out) == (0, "")


def test_the_link_root_comes_from_the_environment_variable(
    patches: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    older, _ = patches
    links, env = tmp_path / "links", tmp_path / "app"
    entry = _store_entry(tmp_path / "store", older, "a", _version(older))
    _venv(env, entry / "bin" / "python3")
    monkeypatch.setenv("VENVKEEPER_LINK_ROOT", str(links))

    # Not yet routed through it: --if-needed is not satisfied, and heals.
    outcome = vk(capsys, "heal", "--if-needed", "--env", env)

    assert outcome.code == 0, outcome.out
    assert os.readlink(env / "bin" / "python") == f"{links}/python3.11/bin/python3"
    assert "relink bin/python" in outcome.out
    assert outcome.out.splitlines()[-1].startswith("heal: 1 environment: 0 healthy, 1 healed")


def _routed_then_collected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, python: Path
) -> tuple[Path, Path, Path]:
    """A venv healed through ``links/python3.11``, whose store entry the store then collected:
    (env, links, the removed entry)."""
    store, links, env = tmp_path / "store", tmp_path / "links", tmp_path / "srv" / ".venv"
    entry = _store_entry(store, python, "a", _version(python))
    _venv(env, entry / "bin" / "python3", "tinyweb==1.0.0")
    assert vk(capsys, "heal", "--env", env, "--link-root", links).code == 0
    shutil.rmtree(entry)
    assert not (env / "bin" / "python").exists()
    return env, links, entry


def test_doctor_names_the_platform_s_dangling_link_and_both_fixes(
    patches: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older, newer = patches
    env, links, gone = _routed_then_collected(capsys, tmp_path, older)
    link = links / "python3.11"

    doctor = vk(capsys, "doctor", "--env", env, "--json")

    assert doctor.code == 1, doctor.out
    [finding] = doctor.json["findings"]  # not home-missing and interpreter-dangling besides
    assert (finding["code"], finding["severity"], finding["path"]) == (
        "interpreter-link-dangling",
        "error",
        "bin/python",
    )
    assert finding["seen"] == (
        f"{link} -> {gone}, which does not exist (the store entry was removed or moved); "
        "bin/python, bin/python3, bin/python3.11 and pyvenv.cfg's home go through it"
    )
    assert finding["repair"] == (
        f"re-point the platform's link: ln -sfn NEW_STORE_ENTRY {link} (every environment on it follows), "
        f"or venvkeeper heal --env {env} --link-root {links} --python NEW_STORE_ENTRY/bin/python3"
    )
    text = vk(capsys, "doctor", "--env", env)
    assert text.code == 1
    assert "  error   interpreter-link-dangling bin/python\n" in text.out
    assert f"      {finding['seen']}\n      heal: {finding['repair']}\n" in text.out

    # The first fix, the platform's: one link re-pointed, and the environment runs on the new entry.
    before = snapshot(env)
    new_entry = _store_entry(tmp_path / "store", newer, "b", _version(newer))
    _repoint(link, new_entry)
    assert _runs(env) == "tinyweb 1.0.0"
    assert vk(capsys, "doctor", "--env", env, "--json").json["findings"] == []
    assert _quick_look(env, links) == "0 False\n"
    assert snapshot(env) == before


def test_heal_onto_a_new_store_entry_re_points_the_dangling_link(
    patches: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older, newer = patches
    env, links, _ = _routed_then_collected(capsys, tmp_path, older)
    new_entry = _store_entry(tmp_path / "store", newer, "b", _version(newer))
    heal = ("heal", "--env", env, "--link-root", links, "--python", new_entry / "bin" / "python3", "--json")
    dry = vk(capsys, *heal, "--dry-run")
    assert dry.code == 1, dry.out
    assert [(o["code"], o["outcome"]) for o in dry.json["outcomes"]] == [
        ("interpreter-link-dangling", "would-repair"),
        ("unstable-interpreter", "skipped"),  # a note: it cannot tell the routed links before the repair
    ]
    assert dry.json["outcomes"][1]["reason"] == f"routed through {links} once the repairs above are made"
    assert not (links / "python3.11").exists() and (links / "python3.11").is_symlink()

    healed = vk(capsys, *heal)

    assert healed.code == 0, healed.out + healed.err
    outcomes = {o["code"]: o["outcome"] for o in healed.json["outcomes"]}
    assert outcomes == {"interpreter-link-dangling": "repaired"}
    assert os.readlink(links / "python3.11") == str(new_entry)
    assert os.readlink(env / "bin" / "python") == f"{links}/python3.11/bin/python3"
    assert _runs(env) == "tinyweb 1.0.0"
    assert _python_version(env) == _version(newer)
    assert vk(capsys, "doctor", "--env", env, "--json").json["findings"] == []


# -- the quick look after a heal, whatever links the environment's maker wrote -----------------


def _make_env(maker: str, python: Path, env: Path) -> None:
    """CPython's venv links ``python -> python3 -> /abs`` (relative links beside the absolute one);
    uv links ``python -> /abs`` and the others to it."""
    if maker == "venv":
        run([python, "-m", "venv", env])
    else:
        _venv(env, python)


def _quick_look(env: Path, links: Path) -> str:
    """``heal --if-needed --link-root`` as a boot runs it, in a fresh process: its output, its exit code
    and whether click (the full heal) had to be loaded."""
    code = (
        "import sys, venvkeeper.cli.main as m; "
        "rc = m.main(['heal', '--if-needed', '--env', sys.argv[1], '--link-root', sys.argv[2]]); "
        "print(rc, 'click' in sys.modules)"
    )
    ran = run([sys.executable, "-c", code, env, links])
    assert ran.stderr == "", ran.stderr
    return ran.stdout


def _mtimes(env: Path) -> dict[str, int]:
    paths = [env / "pyvenv.cfg", env / "bin", *sorted((env / "bin").iterdir())]
    return {path.name: os.lstat(path).st_mtime_ns for path in paths}


def _python_links(env: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in sorted((env / "bin").glob("python*")) if p.is_symlink()}


@pytest.mark.parametrize(("maker", "name"), [("venv", "python3"), ("venv", "python3.11"), ("uv", "python3")])
def test_a_healed_environment_passes_the_quick_look_whatever_links_it_has(
    maker: str, name: str, py311: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stdlib venv's bin/python is a relative link: once healed it must not pay a heal at every boot."""
    entry = tmp_path / "nix" / "store" / f"{'a' * 32}-python3-{_version(py311)}"
    python = install_store_python(entry, py311, name=name)
    links, env = tmp_path / "links", tmp_path / "home" / ".pythonlibs"
    _make_env(maker, python, env)
    relative = {n: t for n, t in _python_links(env).items() if not t.startswith("/")}
    assert relative, "the maker wrote no relative link: nothing is tested"

    healed = vk(capsys, "heal", "--env", env, "--link-root", links, "--json")

    assert healed.code == 0, healed.out + healed.err
    assert healed.json["changed"] is True
    after = _python_links(env)
    assert {n: t for n, t in after.items() if not t.startswith("/")} == relative  # kept as made
    assert all(t.startswith(f"{links}/python3.11/bin/") for n, t in after.items() if n not in relative)
    assert vk(capsys, "doctor", "--env", env, "--json").json["findings"] == []
    before, stamps = snapshot(env), _mtimes(env)

    # The next boot: answered before click, silent, and nothing rewritten.
    assert _quick_look(env, links) == "0 False\n"
    assert (_mtimes(env), snapshot(env)) == (stamps, before)
    quiet = vk(capsys, "heal", "--if-needed", "--env", env, "--link-root", links)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    assert _mtimes(env) == stamps


def _straight_into_the_store(env: Path, links: Path) -> None:
    """bin/python3 re-pointed past the link root (what ``python -m venv --upgrade`` from the store does)."""
    store = os.path.realpath(links / "python3.11")
    (env / "bin" / "python3").unlink()
    (env / "bin" / "python3").symlink_to(f"{store}/bin/python3")


def _relative_link_dangles(env: Path, links: Path) -> None:
    """The absolute link the relative ones lead to is gone: bin/python and bin/python3.11 dangle."""
    (env / "bin" / "python3").unlink()


@pytest.mark.parametrize("damage", [_straight_into_the_store, _relative_link_dangles])
def test_the_quick_look_still_sends_a_broken_stdlib_venv_to_heal(
    damage: Callable[[Path, Path], None], py311: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = tmp_path / "nix" / "store" / f"{'a' * 32}-python3-{_version(py311)}"
    python = install_store_python(entry, py311, name="python3")
    links, env = tmp_path / "links", tmp_path / "app"
    run([python, "-m", "venv", "--without-pip", env])
    assert vk(capsys, "heal", "--env", env, "--link-root", links).code == 0
    assert _quick_look(env, links) == "0 False\n"
    damage(env, links)

    healed = vk(capsys, "heal", "--if-needed", "--env", env, "--link-root", links, "--json")

    assert healed.code == 0, healed.out + healed.err
    line, summary = _lines(healed)  # reported: the quick look did not take it for healthy
    assert (summary["healed"], summary["healthy"]) == (1, 0)
    assert line["changed"] is True
    assert any(a["action"] == "relink" for a in line["actions"])
    assert all(t.startswith(f"{links}/python3.11/bin/") for t in _python_links(env).values() if "/" in t)
    assert _python_version(env) == _version(py311)
    assert _quick_look(env, links) == "0 False\n"


# -- batches and --if-needed -------------------------------------------------------------------


@pytest.fixture
def py311() -> Path:
    found = real_python("3.11")
    if found is None:
        pytest.skip("CPython 3.11 not found under pyenv or on PATH")
    return found


def test_a_batch_reports_a_json_line_per_environment_and_a_summary(
    py311: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy, broken, missing = tmp_path / "healthy", tmp_path / "broken", tmp_path / "missing"
    _venv(healthy, py311)
    _venv(broken, py311)
    (broken / "lib64").unlink()

    outcome = vk(capsys, "heal", "--env", healthy, "--env", broken, "--env", missing, "--jobs", "2", "--json")

    assert outcome.code == 2, outcome.out  # the worst: one could not be inspected
    lines = _lines(outcome)
    summary = lines[-1]
    assert summary["summary"] is True and summary["command"] == "heal"
    assert {k: summary[k] for k in ("environments", "healthy", "healed", "not_healed", "error")} == {
        "environments": 3,
        "healthy": 1,
        "healed": 1,
        "not_healed": 0,
        "error": 1,
    }
    assert (summary["ok"], summary["exit_code"]) == (False, 2)
    by_env = {line["env"]: line for line in lines[:-1]}
    assert sorted(by_env) == sorted(map(str, (healthy, broken, missing)))
    assert by_env[str(broken)]["changed"] is True
    assert by_env[str(healthy)]["changed"] is False
    assert by_env[str(missing)]["error"]["message"] == f"{missing}: no such environment"
    assert (broken / "lib64").is_symlink()


def test_if_needed_over_a_file_of_paths_is_quiet_until_one_needs_it(
    py311: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    envs = [tmp_path / f"u{i}" / ".pythonlibs" for i in range(12)]
    for env in envs:
        _venv(env, py311)
    listing = tmp_path / "envs.txt"
    listing.write_text("# the platform's users\n" + "".join(f"{env}\n" for env in envs) + "\n")

    quiet = vk(capsys, "heal", "--if-needed", "--envs-from", listing, "--json")
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    assert vk_click(capsys, "heal", "--if-needed", "--envs-from", listing, "--json").out == ""

    moved = tmp_path / "moved" / ".pythonlibs"
    shutil.copytree(envs[3], moved, symlinks=True)  # a copied directory names the old place
    listing.write_text(listing.read_text() + f"{moved}\n")

    acted = vk(capsys, "heal", "--if-needed", "--envs-from", listing, "--json")

    assert acted.code == 0, acted.out
    lines = _lines(acted)
    assert [line["env"] for line in lines[:-1]] == [str(moved)]
    assert lines[0]["changed"] is True
    assert (lines[-1]["environments"], lines[-1]["healthy"], lines[-1]["healed"]) == (13, 12, 1)
    assert str(envs[3]) not in (moved / "bin" / "activate").read_text()
    assert vk(capsys, "heal", "--if-needed", "--envs-from", listing).out == ""


def test_if_needed_does_not_take_a_broken_environment_for_a_healthy_one(
    py311: Path, py312: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, env = tmp_path / "store", tmp_path / "app"
    python3 = install_store_python(store, py311, name="python3")
    _venv(env, python3)
    assert vk(capsys, "heal", "--if-needed", "--env", env).out == ""
    install_store_python(store, py312, name="python3")  # the same path now runs 3.12

    outcome = vk(capsys, "heal", "--if-needed", "--env", env, "--dry-run", "--json")

    assert outcome.code == 1, outcome.out
    assert [o["code"] for o in _lines(outcome)[0]["outcomes"]] == ["version-mismatch"]


def test_envs_from_a_file_that_cannot_be_read_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = vk(capsys, "heal", "--envs-from", tmp_path / "none.txt")

    assert outcome.code == 2
    assert outcome.error_line == f"error: {tmp_path / 'none.txt'}: cannot be read: No such file or directory"
    nothing = vk(capsys, "heal", "--json")
    assert nothing.code == 2
    assert nothing.json["error"]["message"] == "no environment given"


def test_heal_at_boot_is_fast_when_nothing_is_wrong(py311: Path, tmp_path: Path) -> None:
    """The fast path answers without click (it is what a boot and each package operation run)."""
    env = tmp_path / "app"
    _venv(env, py311)
    code = (
        "import sys, venvkeeper.cli.main as m; rc = m.main(['heal', '--if-needed', '--env', sys.argv[1]]); "
        "print(rc, 'click' in sys.modules, 'json' in sys.modules)"
    )
    ran = run([sys.executable, "-c", code, env])
    assert ran.stdout.split() == ["0", "False", "False"]


def test_a_package_directory_is_converted_and_routed_through_the_link_root(
    py311: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `.pythonlibs` story: a `--prefix` package directory on a store interpreter, healed at boot."""
    entry = _store_entry(tmp_path / "store", py311, "a", _version(py311))
    links, libs = tmp_path / "links", tmp_path / "home" / ".pythonlibs"
    python3 = entry / "bin" / "python3"
    run([find_uv(), "pip", "install", "--quiet", "--python", python3, "--prefix", libs, "tinyweb==1.0.0"])
    assert not (libs / "pyvenv.cfg").exists()

    healed = vk(
        capsys, "heal", "--if-needed", "--env", libs, "--link-root", links, "--python", python3, "--json"
    )

    assert healed.code == 0, healed.out + healed.err
    line = _lines(healed)[0]
    assert [a["action"] for a in line["actions"]][:2] == ["convert", "link-root"]
    assert os.readlink(libs / "bin" / "python") == f"{links}/python3.11/bin/python3"
    assert _runs(libs) == "tinyweb 1.0.0"
    quiet = vk(capsys, "heal", "--if-needed", "--env", libs, "--link-root", links)
    assert (quiet.code, quiet.out) == (0, "")


def test_a_deployed_generation_is_not_re_pointed_and_says_so(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env, links = tmp_path / "srv" / ".venv", tmp_path / "links"
    deployed = vk(capsys, "deploy", make_project("single"), "--env", env)
    assert deployed.code == 0, deployed.err
    before = snapshot(env)

    healed = vk(capsys, "heal", "--env", env, "--link-root", links, "--json")

    assert healed.code == 0, healed.out
    [unrouted] = healed.json["outcomes"]
    assert (unrouted["code"], unrouted["outcome"]) == ("unstable-interpreter", "skipped")
    assert "--python DIR/python3.X/bin/python3.X" in unrouted["reason"]
    assert snapshot(env) == before
    assert not links.exists()


def test_envs_from_standard_input(py311: Path, tmp_path: Path) -> None:
    envs = [tmp_path / "a", tmp_path / "b"]
    for env in envs:
        _venv(env, py311)
    (envs[1] / "lib64").unlink()

    ran = subprocess.run(
        [sys.executable, "-m", "venvkeeper", "heal", "--if-needed", "--envs-from", "-", "--json"],
        input="".join(f"{env}\n" for env in envs),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [line["env"] for line in lines[:-1]] == [str(envs[1])]
    assert (lines[-1]["environments"], lines[-1]["healed"]) == (2, 1)
