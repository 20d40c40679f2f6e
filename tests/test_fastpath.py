"""The no-op fast path: answered from file metadata, and never when something changed."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from venvkeeper.cli.render_noop import dumps
from venvkeeper.generations import stamp as stamps
from vk import generations, run_in_env, vk

FAST = "(file metadata unchanged)"
CAPABILITIES = {"deploy", "verify", "doctor", "update", "bundle"}


def _settle() -> None:
    # The stamp is not written while files are younger than the racy window (2 s), as git does.
    time.sleep(2.1)


@pytest.fixture
def stamped(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path]:
    project = make_project("workspace")
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    _settle()
    slow = vk(capsys, "deploy", project, "--env", env)
    assert "is unchanged" in slow.out
    assert FAST not in slow.out
    assert (tmp_path / ".venv.venvkeeper" / "noop-stamp.marshal").is_file()
    return project, env


def test_unchanged_is_answered_from_metadata(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    fast = vk(capsys, "deploy", project, "--env", env)
    assert fast.code == 0
    assert fast.out.startswith(
        f"{env} is unchanged (generation 1): nothing changed since the live environment"
    )
    assert FAST in fast.out


def test_the_fast_paths_load_only_their_own_command(stamped: tuple[Path, Path], tmp_path: Path) -> None:
    """A no-op deploy, verify and doctor (timed) load neither click, cryptography nor another command."""
    project, env = stamped
    own = {"deploy": set(), "verify": {"verify"}, "doctor": {"doctor"}}
    args = {
        "deploy": ["deploy", str(project), "--env", str(env)],
        "verify": ["verify", "--env", str(env)],
        "doctor": ["doctor", "--env", str(env)],
    }
    program = (
        "import sys\n"
        "from venvkeeper.cli.main import main\n"
        "code = main(sys.argv[2:])\n"
        "with open(sys.argv[1], 'w') as fh:\n"
        "    fh.write(' '.join(sys.modules))\n"
        "raise SystemExit(code)\n"
    )
    for command, argv in args.items():
        modules = tmp_path / f"{command}.modules"
        proc = subprocess.run(
            [sys.executable, "-c", program, str(modules), *argv], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        if command == "deploy":
            assert FAST in proc.stdout
        loaded = modules.read_text().split()
        capabilities = {m.split(".")[1] for m in loaded if m.startswith("venvkeeper.")} & CAPABILITIES
        assert sorted(capabilities - own[command]) == [], command
        heavy = [m for m in ("click", "cryptography", "packaging", "dataclasses") if m in loaded]
        assert heavy == [], command
        if command == "deploy":
            # json alone loads re, enum and functools: more than the rest of the no-op's own work.
            assert [m for m in ("json", "re", "enum", "typing", "pathlib") if m in loaded] == []


@pytest.mark.parametrize("check", [False, True], ids=["deploy", "check"])
@pytest.mark.parametrize("in_place", [False, True], ids=["generation", "in-place"])
def test_fast_json_is_the_full_paths_json(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    in_place: bool,
    check: bool,
) -> None:
    """--json from the fast path (a plain dict, no dataclasses) is the full path's answer to the same
    no-op, key for key and in the same order; only the time and how "unchanged" was found differ.
    ``deploy --check --diff`` too: the stamp answers it as a check, exit 0."""
    project = make_project("workspace")
    env = tmp_path / ".venv"
    args = ["deploy", project, "--env", env, *(["--in-place"] if in_place else [])]
    asked = [*args, *(["--check", "--diff"] if check else [])]
    assert vk(capsys, *args).code == 0
    _settle()
    stamp = tmp_path / ".venv.venvkeeper" / "noop-stamp.marshal"
    slow = vk(capsys, *asked, "--json")  # a check writes no stamp: the deploy after it does
    assert vk(capsys, *args).code == 0
    assert stamp.is_file()
    fast = vk(capsys, *asked, "--json")
    assert (slow.code, fast.code) == (0, 0)
    assert fast.json.get("check") is (True if check else None)
    assert FAST not in slow.json["reason"]
    assert fast.json["reason"] == f"{slow.json['reason']} {FAST}"
    assert list(fast.json) == list(slow.json)
    for key in slow.json.keys() - {"duration_s", "reason"}:
        assert fast.json[key] == slow.json[key], key
    assert fast.json["in_place"] is in_place
    assert fast.json["generation"] == (None if in_place else 1)
    assert isinstance(fast.json["duration_s"], float)
    # Printed as the full path prints JSON (indent 2), not merely the same object.
    assert fast.out == json.dumps(fast.json, indent=2) + "\n"


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        {"a": [], "b": {}, "c": [{}], "d": [[1, [2, {"e": None}]]]},
        {"s": 'quote " backslash \\ tab \t nl \n nul \x00 \x1f é ✓ 😀 \u2028', "": ""},
        {"ints": [0, -1, 2**70, True, False], "floats": [0.0, -0.5, 1e-7, 1e22, 0.1 + 0.2, 1.5]},
        {"nan": float("nan"), "inf": [float("inf"), float("-inf")]},
        ["tuple", (1, 2)],
    ],
)
def test_the_fast_json_writer_writes_what_json_dumps_writes(value: object) -> None:
    assert dumps(value) == json.dumps(value, indent=2)


def test_the_fast_json_writer_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        dumps({"a": {1, 2}})
    with pytest.raises(TypeError):
        dumps({1: "int key"})  # json would turn it into "1": never given one here


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal at all", b'{"schema": 2}', None],
    ids=["empty", "garbage", "old-json", "truncated"],
)
def test_an_unreadable_stamp_hands_over_to_the_full_deploy(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    project, env = stamped
    stamp = env.parent / ".venv.venvkeeper" / "noop-stamp.marshal"
    good = stamp.read_bytes()
    stamp.write_bytes(good[: len(good) // 2] if content is None else content)
    slow = vk(capsys, "deploy", project, "--env", env)
    assert slow.code == 0
    assert "is unchanged" in slow.out
    assert FAST not in slow.out
    # The full deploy wrote a good stamp again.
    assert marshal.loads(stamp.read_bytes())["schema"] == stamps.SCHEMA  # noqa: S302 - the test's own file
    assert FAST in vk(capsys, "deploy", project, "--env", env).out


def test_a_stamp_for_another_schema_is_not_trusted(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    stamp = env.parent / ".venv.venvkeeper" / "noop-stamp.marshal"
    record = marshal.loads(stamp.read_bytes())  # noqa: S302 - the test's own file
    stamp.write_bytes(marshal.dumps({**record, "schema": stamps.SCHEMA - 1}))
    assert FAST not in vk(capsys, "deploy", project, "--env", env).out


def test_an_older_versions_json_stamp_is_removed(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    old = env.parent / ".venv.venvkeeper" / "noop-stamp.json"
    old.write_text("{}")
    (env.parent / ".venv.venvkeeper" / "noop-stamp.marshal").unlink()
    assert FAST not in vk(capsys, "deploy", project, "--env", env).out
    assert not old.exists()


def test_a_same_size_edit_with_the_old_mtime_is_still_seen(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    before = init.stat()
    text = init.read_text()
    edited = text.replace('print(f"webapp ', 'print(f"WEBAPP ', 1)
    assert len(edited) == len(text)
    init.write_text(edited)
    os.utime(init, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves

    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert report["changed"] is True
    assert report["rebuilt"] == ["webapp"]
    assert run_in_env(env, "webapp").stdout.startswith("WEBAPP 0.1.0")


def test_other_options_are_not_answered_by_the_stamp(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    report = vk(capsys, "deploy", project, "--env", env, "--group", "dev", "--json").json
    assert report["changed"] is True
    assert report["added"] == [{"name": "tinyextra", "old": "", "new": "1.0.0"}]


def test_rollback_invalidates_the_stamp(
    stamped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = stamped
    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + "\n# v2\n")
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    _settle()
    assert "is unchanged" in vk(capsys, "deploy", project, "--env", env).out  # stamps generation 2
    assert vk(capsys, "rollback", "--env", env).code == 0
    report = vk(capsys, "deploy", project, "--env", env, "--json").json
    assert report["changed"] is True  # generation 1 is live, and was not built from this tree
    assert report["generation"] == 3
    assert generations(env)[-2:] == ["0003", "0003.json"]


def test_no_stamp_outside_git(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace", git=False)
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    _settle()
    assert "is unchanged" in vk(capsys, "deploy", project, "--env", env).out
    assert not (tmp_path / ".venv.venvkeeper" / "noop-stamp.marshal").exists()
