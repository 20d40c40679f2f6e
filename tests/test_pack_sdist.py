"""``venvkeeper pack`` with a dependency published only as an sdist: the locked sdist is fetched
(checked against uv.lock's sha256), built into a wheel here and bundled, and the bundle installs
with the index down. A compiled sdist packs for this host and is refused for any other target.

The sdists are real ones, built by ``uv build --sdist`` from tiny setuptools projects and served by
the local index; the projects that depend on them are locked by uv against it.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from support.index import LocalIndex
from support.process import run
from support.projects import ProjectFactory, git_commit_all
from vk import run_in_env, vk

PURE = "tinysrc"
COMPILED = "tinyc"
BROKEN = "tinybroken"


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _pyproject(name: str) -> str:
    return f"""\
        [build-system]
        requires = ["setuptools>=70"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "1.0.0"
        requires-python = ">=3.8"

        [tool.setuptools]
        packages = ["{name}"]
        """


SOURCES: dict[str, dict[str, str]] = {
    PURE: {
        "pyproject.toml": _pyproject(PURE),
        f"{PURE}/__init__.py": '__version__ = "1.0.0"\n',
    },
    # A C extension: the wheel setuptools builds from it is tagged for this interpreter and platform.
    COMPILED: {
        "pyproject.toml": _pyproject(COMPILED),
        "setup.py": f"""\
            from setuptools import Extension, setup

            setup(ext_modules=[Extension("{COMPILED}._speed", ["{COMPILED}/_speed.c"])])
            """,
        f"{COMPILED}/__init__.py": "from ._speed import answer\n",
        f"{COMPILED}/_speed.c": """\
            #include <Python.h>

            static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
            static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
            static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
            PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
            """,
    },
    # Its sdist builds; its wheel does not (setuptools runs setup.py with bdist_wheel for a wheel).
    BROKEN: {
        "pyproject.toml": _pyproject(BROKEN),
        "setup.py": """\
            import sys

            from setuptools import setup

            if "bdist_wheel" in sys.argv:
                sys.exit("tinybroken: this release cannot be built")
            setup()
            """,
        f"{BROKEN}/__init__.py": "",
    },
}


@pytest.fixture(scope="module")
def sdists(project_factory: ProjectFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``uv build --sdist`` of each tiny project, once for the module: name -> its .tar.gz."""
    built: dict[str, Path] = {}
    for name, files in SOURCES.items():
        source = tmp_path_factory.mktemp(f"{name}-source")
        _write(source, files)
        out = tmp_path_factory.mktemp(f"{name}-dist")
        run([project_factory.uv, "build", "--sdist", "--out-dir", out, source], env=project_factory.environ)
        (built[name],) = out.glob("*.tar.gz")
    return built


@pytest.fixture
def make_app(
    tmp_path: Path, index: LocalIndex, sdists: dict[str, Path], uv_bin: Path
) -> Callable[[str], Path]:
    """``make_app("tinysrc")``: the sdist on the index, and a committed project that locks it."""

    def make_app(dependency: str) -> Path:
        index.publish(sdists[dependency])
        project = tmp_path / "app"
        _write(
            project,
            {
                "pyproject.toml": f"""\
                    [project]
                    name = "app"
                    version = "0.1.0"
                    requires-python = ">=3.11"
                    dependencies = ["{dependency}", "tinyutil"]
                    """
            },
        )
        run([uv_bin, "lock"], cwd=project)
        run(["git", "init", "-q", "-b", "main"], cwd=project)
        git_commit_all(project, "the app")
        return project

    return make_app


def _locked_sdist_sha256(project: Path, name: str) -> str:
    lock = tomllib.loads((project / "uv.lock").read_text())
    (package,) = [p for p in lock["package"] if p["name"] == name]
    assert "wheels" not in package  # uv locked it as an sdist alone
    digest: str = package["sdist"]["hash"].removeprefix("sha256:")
    return digest


def _members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {
            member.name.split("/", 1)[1]: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


def test_a_pure_sdist_is_built_into_the_bundle_and_installs_offline(
    make_app: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], index: LocalIndex
) -> None:
    project = make_app(PURE)
    sdist_sha256 = _locked_sdist_sha256(project, PURE)

    first = vk(capsys, "pack", project, "-o", tmp_path / "a.tar.gz", "--json")
    second = vk(capsys, "pack", project, "-o", tmp_path / "b.tar.gz", "--json")

    assert first.code == 0, first.err
    assert second.code == 0, second.err
    assert first.json["built_from_sdists"] == ["tinysrc-1.0.0-py3-none-any.whl"]
    # Built twice, from scratch each time: the same bytes.
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    files = _members(tmp_path / "a.tar.gz")
    assert sorted(name for name in files if name.startswith("wheels/")) == [
        "wheels/tinysrc-1.0.0-py3-none-any.whl",
        "wheels/tinyutil-1.1.0-py3-none-any.whl",
    ]
    assert not any(name.endswith(".tar.gz") for name in files)
    # pylock.toml names the built wheel by path and sha256, and the locked sdist it came from.
    pylock = Pylock.from_dict(tomllib.loads(files["pylock.toml"].decode()))
    (package,) = [p for p in pylock.packages if p.name == PURE]
    (wheel,) = package.wheels or []
    assert (wheel.path, wheel.url, wheel.upload_time) == ("wheels/tinysrc-1.0.0-py3-none-any.whl", None, None)
    assert wheel.hashes["sha256"] == hashlib.sha256(files[str(wheel.path)]).hexdigest()
    assert package.sdist is None
    assert package.tool == {
        "venvkeeper": {
            "built-from-sdist": {"name": "tinysrc-1.0.0.tar.gz", "hashes": {"sha256": sdist_sha256}}
        }
    }

    index.stop()
    env = tmp_path / "srv" / ".venv"
    installed = vk(capsys, "install", tmp_path / "a.tar.gz", "--env", env, "--json")

    assert installed.code == 0, installed.err
    probe = run_in_env(env, "python", "-c", "import tinysrc, tinyutil; print(tinysrc.__version__)")
    assert probe.stdout.strip() == "1.0.0", probe.stderr
    assert vk(capsys, "verify", "--env", env).code == 0


def test_an_sdist_that_does_not_match_the_lock_is_refused(
    make_app: Callable[[str], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    index: LocalIndex,
    sdists: dict[str, Path],
) -> None:
    project = make_app(PURE)
    locked = _locked_sdist_sha256(project, PURE)
    # The index now serves other bytes under the locked file name: still a valid sdist.
    tampered = tmp_path / "tampered" / sdists[PURE].name
    tampered.parent.mkdir()
    with tarfile.open(sdists[PURE]) as source, tarfile.open(tampered, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            if member.name.endswith("__init__.py"):
                payload = b'__version__ = "6.6.6"\n'
                member.size = len(payload)
                data = io.BytesIO(payload)
            target.addfile(member, data)
    index.publish(tampered)
    out = tmp_path / "app.tar.gz"

    result = vk(capsys, "pack", project, "-o", out)

    assert result.code == 1, result.err
    line = result.error_line
    assert "tinysrc-1.0.0.tar.gz" in line
    assert f"not uv.lock's {locked}" in line
    assert hashlib.sha256(tampered.read_bytes()).hexdigest() in line
    assert not out.exists()


def test_a_compiled_sdist_packs_for_this_host_and_installs_offline(
    make_app: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], index: LocalIndex
) -> None:
    project = make_app(COMPILED)

    packed = vk(capsys, "pack", project, "-o", tmp_path / "app.tar.gz", "--json")

    assert packed.code == 0, packed.err
    (wheel,) = packed.json["built_from_sdists"]
    assert wheel.startswith("tinyc-1.0.0-cp3") and not wheel.endswith("-none-any.whl")
    index.stop()
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "install", tmp_path / "app.tar.gz", "--env", env).code == 0
    probe = run_in_env(env, "python", "-c", "import tinyc; print(tinyc.answer())")
    assert probe.stdout.strip() == "42", probe.stderr


# Another system, and this one's but for older glibc: a wheel compiled here may not load there.
@pytest.mark.parametrize("platform", ["macosx_11_0_arm64", "manylinux_2_17_x86_64"])
def test_a_compiled_sdist_for_a_foreign_target_is_refused_naming_it(
    make_app: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: str
) -> None:
    project = make_app(COMPILED)
    out = tmp_path / "app.tar.gz"

    result = vk(capsys, "pack", project, "-o", out, "--platform", platform)

    assert result.code == 2, result.err
    line = result.error_line
    assert "tinyc 1.0.0 (tinyc-1.0.0.tar.gz)" in line
    assert "compiled wheel" in line
    assert f"does not run on cp{sys.version_info[0]}{sys.version_info[1]}-{platform}" in line
    assert not out.exists()


def test_an_sdist_that_fails_to_build_shows_the_backends_reason(
    make_app: Callable[[str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_app(BROKEN)
    out = tmp_path / "app.tar.gz"

    result = vk(capsys, "pack", project, "-o", out)

    assert result.code == 1, result.err
    assert "tinybroken 1.0.0 (tinybroken-1.0.0.tar.gz): the locked sdist failed to build" in result.error_line
    assert "tinybroken: this release cannot be built" in result.err
    assert "setuptools.build_meta.build_wheel` failed" in result.error_line  # uv's reason, no scratch path
    assert "venvkeeper-pack-" not in result.err
    assert not out.exists()
