"""A pylock.toml's wheels chosen by the tags of the interpreter the environment runs, not venvkeeper's.

The tags are built (venvkeeper.project.wheeltags) from what that interpreter says about itself in one
run (generations/smoke.py's TAG_FACTS_SNIPPET). The oracle: each real interpreter on this machine
(pyenv's CPython, Debian's PyPy when installed) computes its own ``packaging.tags.sys_tags()``, with
venvkeeper's packaging copied beside the test (the product never imports packaging there).

No free-threaded CPython (3.13t) is on this machine, so its facts are those captured from pyenv's
CPython 3.13.0 below, with what a 3.13t build's sysconfig says instead (``Py_GIL_DISABLED`` 1, the
``cpython-313t`` SOABI and EXT_SUFFIX); the refusal is shown end to end by handing those facts to a
real 3.13 deploy.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import packaging
import pytest
from packaging.tags import Tag, platform_tags

from support.interpreter import find_python
from support.pythons import install_store_python
from support.wheels import make_wheel
from venvkeeper.core.errors import LockError
from venvkeeper.generations import smoke
from venvkeeper.project import pylock as locks
from venvkeeper.project import wheeltags
from vk import run_in_env, vk

# Captured from /root/.pyenv/versions/3.13.0/bin/python3 with smoke.TAG_FACTS_SNIPPET.
CPYTHON_313: dict[str, Any] = {
    "implementation": "cpython",
    "version": [3, 13],
    "py_version_nodot": "313",
    "py_debug": 0,
    "gettotalrefcount": False,
    "gil_disabled": 0,
    "with_pymalloc": 1,
    "ext_suffix": ".cpython-313-x86_64-linux-gnu.so",
    "soabi": "cpython-313-x86_64-linux-gnu",
    "platform": "linux-x86_64",
    "system": "Linux",
    "machine": "x86_64",
    "is_32bit": False,
    "glibc": "glibc 2.36",
    "mac_version": "",
}
# The same build configured --disable-gil (PEP 703): what python3.13t's sysconfig reports.
CPYTHON_313T = {
    **CPYTHON_313,
    "gil_disabled": 1,
    "ext_suffix": ".cpython-313t-x86_64-linux-gnu.so",
    "soabi": "cpython-313t-x86_64-linux-gnu",
}
# Captured from Debian's /usr/bin/pypy3 (PyPy 7.3.11).
PYPY_39: dict[str, Any] = {
    **CPYTHON_313,
    "implementation": "pypy",
    "version": [3, 9],
    "py_version_nodot": "39",
    "with_pymalloc": None,
    "gil_disabled": None,
    "ext_suffix": ".pypy39-pp73-x86_64-linux-gnu.so",
    "soabi": "pypy39-pp73",
}


def _interpreters() -> list[Any]:
    found = [pytest.param(f"3.{minor}", id=f"cpython-3.{minor}") for minor in (10, 11, 12, 13)]
    return [*found, pytest.param("pypy3", id="pypy3")]


def _real(name: str) -> Path:
    if name == "pypy3":
        path = shutil.which("pypy3")
        if path is None:
            pytest.skip("no pypy3 on PATH (Debian: apt-get install pypy3)")
        return Path(path)
    python = find_python(name)
    if python is None:
        pytest.skip(f"CPython {name} not found under pyenv or on PATH")
    return python


def _own_sys_tags(python: Path, tmp_path: Path) -> list[str]:
    """``sys_tags()`` as ``python`` computes it, with venvkeeper's packaging on its path (test only)."""
    shutil.copytree(Path(packaging.__file__).parent, tmp_path / "oracle" / "packaging")
    program = (
        f"import json, sys; sys.path.insert(0, {str(tmp_path / 'oracle')!r}); from packaging import tags; "
        "print(json.dumps([str(t) for t in tags.sys_tags()]))"
    )
    proc = subprocess.run(
        [python, "-I", "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    found: list[str] = json.loads(proc.stdout)
    return found


@pytest.mark.parametrize("name", _interpreters())
def test_the_tags_of_a_real_interpreter_are_those_it_computes_itself(name: str, tmp_path: Path) -> None:
    python = _real(name)
    found = smoke.interpreter_facts(python)
    assert found is not None
    markers, facts = found
    assert markers["python_version"] == ".".join(map(str, facts["version"]))

    built = [str(t) for t in wheeltags.tags_for(wheeltags.TagFacts.from_json(facts))]

    assert built == _own_sys_tags(python, tmp_path)


def test_venvkeeper_s_own_platform_is_read_as_the_snippet_reads_it() -> None:
    """wheeltags.own_platform() decides whether packaging's platform_tags() stand for the target's:
    it must read what TAG_FACTS_SNIPPET reads, here from a real run of the snippet."""
    found = smoke.interpreter_facts(Path(sys.executable))
    assert found is not None
    assert wheeltags.TagFacts.from_json(found[1]).platform_key == wheeltags.own_platform()


@pytest.mark.skipif(
    wheeltags.own_platform()[1:4] != ("Linux", False, "glibc 2.36") or platform.machine() != "x86_64",
    reason="the captured facts are of a 64-bit x86_64 Linux with glibc 2.36",
)
def test_platforms_of_another_c_library_are_derived_as_packaging_derives_them() -> None:
    """Facts of another machine than venvkeeper's (here: another mac_version, so not taken for this
    one) get the platform tags packaging computes for this machine, derived from the facts alone."""
    assert wheeltags.platforms(wheeltags.TagFacts.from_json({**CPYTHON_313, "mac_version": "-"})) == tuple(
        platform_tags()
    )
    old = wheeltags.platforms(wheeltags.TagFacts.from_json({**CPYTHON_313, "glibc": "glibc 2.17"}))
    assert old[:3] == ("linux_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
    assert old[-2:] == ("manylinux_2_5_x86_64", "manylinux1_x86_64")
    musl = wheeltags.platforms(wheeltags.TagFacts.from_json({**CPYTHON_313, "glibc": None}))
    assert musl == ("linux_x86_64",)  # no glibc, musl's version not asked: only the machine's own


def test_a_free_threaded_313_is_told_from_the_normal_313() -> None:
    normal = wheeltags.tags_for(wheeltags.TagFacts.from_json(CPYTHON_313))
    threaded = wheeltags.tags_for(wheeltags.TagFacts.from_json(CPYTHON_313T))

    assert normal[0].abi == "cp313" and Tag("cp313", "abi3", "manylinux_2_17_x86_64") in normal
    assert threaded[0] == Tag("cp313", "cp313t", normal[0].platform)
    assert {t.abi for t in threaded} == {"cp313t", "abi3t", "none"}  # never a GIL build's cp313 or abi3
    pypy = wheeltags.tags_for(wheeltags.TagFacts.from_json(PYPY_39))
    assert pypy[0] == Tag("pp39", "pypy39_pp73", normal[0].platform)
    assert not {t.abi for t in pypy} & {"cp39", "abi3"}


def _ext_lock(directory: Path, builds: dict[str, str]) -> Path:
    """A pylock.toml with one package, ``tinyext``, and one wheel per build (tag -> BUILD's value)."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for tag, build in builds.items():
        wheel = make_wheel(
            directory, "tinyext", "1.0.0", files={"tinyext/__init__.py": f'BUILD = "{build}"\n'}, tag=tag
        )
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        entries.append(
            f'{{ name = "{wheel.name}", path = "./{wheel.name}", hashes = {{ sha256 = "{digest}" }} }}'
        )
    lock = directory / "pylock.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n\n[[packages]]\nname = "tinyext"\nversion = "1.0.0"\n'
        f"wheels = [{', '.join(entries)}]\n"
    )
    return lock


_MACHINE = platform.machine()
_BUILDS = {
    f"{abi}-manylinux_2_17_{_MACHINE}": abi.split("-")[0]
    for abi in ("cp310-cp310", "cp312-cp312", "cp313-cp313", "pp39-pypy39_pp73")
}
# The wheel each interpreter's own tags choose.
_CHOSEN = {"3.10": "cp310", "3.12": "cp312", "3.13": "cp313", "pypy3": "pp39"}


@pytest.mark.parametrize("name", [p for p in _interpreters() if p.values[0] in _CHOSEN])
def test_deploy_lock_installs_the_wheel_of_the_interpreter_it_runs(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = _real(name)
    lock = _ext_lock(tmp_path / "project", _BUILDS)
    env = tmp_path / "env"

    deployed = vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", python, "--json")

    assert deployed.code == 0, deployed.err
    assert [p["name"] for p in deployed.json["added"]] == ["tinyext"]
    assert (
        run_in_env(env, "python", "-c", "import tinyext; print(tinyext.BUILD)").stdout.strip()
        == _CHOSEN[name]
    )
    verified = vk(capsys, "verify", "--env", env, "--lock", lock, "--json")
    assert verified.code == 0, verified.out + verified.err
    assert {c["check"]: c["status"] for c in verified.json["checks"]}["wheels"] == "ok"


def test_a_cp313_wheel_is_refused_for_a_free_threaded_313_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    python = _real("3.13")
    lock = _ext_lock(tmp_path / "project", {f"cp313-cp313-manylinux_2_17_{_MACHINE}": "cp313"})
    env = tmp_path / "env"
    real = smoke.interpreter_facts

    def free_threaded(path: Path) -> tuple[dict[str, str], dict[str, Any]] | None:
        found = real(path)
        assert found is not None
        return found[0], {**found[1], **{k: CPYTHON_313T[k] for k in ("gil_disabled", "ext_suffix", "soabi")}}

    with monkeypatch.context() as patch:
        patch.setattr(smoke, "interpreter_facts", free_threaded)
        refused = vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", python)

    assert refused.code == 2, refused.out + refused.err
    line = refused.error_line
    wheel = f"tinyext-1.0.0-cp313-cp313-manylinux_2_17_{_MACHINE}.whl"
    assert f"{lock}: tinyext: no locked wheel fits cpython 3.13." in line
    assert f"the lock has {wheel}; this interpreter takes cp313-cp313t, cp313-abi3t, cp313-none" in line
    assert not os.path.lexists(env) and not (tmp_path / "env.venvkeeper").exists()
    # The same interpreter as it really is (GIL): the wheel is its own.
    assert vk(capsys, "deploy", "--lock", lock, "--env", env, "--python", python).code == 0


def test_select_names_the_package_its_wheels_and_the_interpreter_s_tags(tmp_path: Path) -> None:
    lock_path = _ext_lock(tmp_path / "project", {"cp313-cp313-manylinux_2_17_x86_64": "cp313"})
    lock = locks.load(lock_path)
    markers = {"implementation_name": "cpython", "python_full_version": "3.13.0", "python_version": "3.13"}
    markers |= {"sys_platform": "linux", "platform_machine": "x86_64", "os_name": "posix"}
    markers |= {"platform_system": "Linux", "platform_python_implementation": "CPython"}
    facts = {**CPYTHON_313T, "mac_version": "-"}  # derived platforms: the same on any machine

    with pytest.raises(LockError) as refused:
        locks.select(lock_path, lock, markers, wheeltags.tags_for(wheeltags.TagFacts.from_json(facts)))

    assert refused.value.message == (
        f"{lock_path}: tinyext: no locked wheel fits cpython 3.13.0 on linux x86_64: the lock has "
        "tinyext-1.0.0-cp313-cp313-manylinux_2_17_x86_64.whl; this interpreter takes cp313-cp313t, "
        "cp313-abi3t, cp313-none, … on linux_x86_64, manylinux_2_36_x86_64, …"
    )
    chosen = locks.select(
        lock_path, lock, markers, wheeltags.tags_for(wheeltags.TagFacts.from_json(CPYTHON_313))
    )
    assert [w.filename for w in chosen] == ["tinyext-1.0.0-cp313-cp313-manylinux_2_17_x86_64.whl"]
    # With an sdist beside the wheel, packaging falls back to it: refused as an sdist, the tags named.
    url, digest = "https://example.invalid/tinyext-1.0.0.tar.gz", "a" * 64
    sdist = f'sdist = {{ url = "{url}", hashes = {{ sha256 = "{digest}" }} }}'
    lock_path.write_text(lock_path.read_text() + sdist + "\n")
    with pytest.raises(LockError) as fallback:
        locks.select(
            lock_path, locks.load(lock_path), markers, wheeltags.tags_for(wheeltags.TagFacts.from_json(facts))
        )
    assert fallback.value.message.startswith(
        f"{lock_path}: tinyext: locked as a sdist, and has no wheel for "
    )
    assert fallback.value.message.endswith(
        "(this interpreter takes cp313-cp313t, cp313-abi3t, cp313-none, … "
        "on linux_x86_64, manylinux_2_36_x86_64, …)"
    )


def test_the_interpreter_is_asked_once_while_its_file_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _real("3.12")
    python = install_store_python(tmp_path / "store", source)
    runs: list[str] = []
    real_run = smoke.run_python

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(str(args[0]))
        return real_run(*args, **kwargs)

    monkeypatch.setattr(smoke, "run_python", counted)
    first = smoke.interpreter_facts(python)
    assert smoke.interpreter_facts(python) == first and first is not None
    assert runs == [str(python)]
    os.utime(python, ns=(python.stat().st_atime_ns, python.stat().st_mtime_ns + 10**9))  # an upgrade in place
    assert smoke.interpreter_facts(python) == first
    assert runs == [str(python)] * 2
