"""The hermetic infrastructure itself: real wheels, a real index, real fixture projects."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from support.index import LocalIndex, LocalIndexError
from support.interpreter import find_python
from support.process import run
from support.projects import ProjectTemplateError, render_template, template_names
from support.wheels import make_wheel, repack_installed

MakeProject = Callable[..., Path]

HELLO_SOURCE = """\
import tinyutil


def main():
    print("hello from", tinyutil.__version__)
"""


def make_venv(uv_bin: Path, path: Path) -> Path:
    run([uv_bin, "venv", "--quiet", path])
    return path


def installed_versions(uv_bin: Path, venv: Path) -> dict[str, str]:
    frozen = run([uv_bin, "pip", "freeze", "--python", venv]).stdout
    return dict(line.split("==") for line in frozen.splitlines() if "==" in line)


def test_made_wheel_installs_from_the_index_and_its_script_runs(
    index: LocalIndex, uv_bin: Path, tmp_path: Path
) -> None:
    wheel = make_wheel(
        tmp_path / "wheels",
        "tiny-hello",
        "0.3.0",
        files={"tiny_hello/__init__.py": HELLO_SOURCE},
        requires=["tinyutil>=1.0"],
        console_scripts={"tiny-hello": "tiny_hello:main"},
    )
    assert wheel.name == "tiny_hello-0.3.0-py3-none-any.whl"
    index.publish(wheel)
    venv = make_venv(uv_bin, tmp_path / "venv")

    run([uv_bin, "pip", "install", "--python", venv, "tiny-hello"])

    assert run([venv / "bin" / "tiny-hello"]).stdout == "hello from 1.1.0\n"
    assert installed_versions(uv_bin, venv) == {"tiny-hello": "0.3.0", "tinyutil": "1.1.0"}


def test_made_wheel_records_every_file_with_its_hash(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tinyweb", "2.0.0", console_scripts={"tinyweb": "tinyweb:main"})

    with zipfile.ZipFile(wheel) as archive:
        record = archive.read("tinyweb-2.0.0.dist-info/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if name.endswith("/RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, size) == (f"sha256={expected}", str(len(data)))
        assert sorted(line.split(",")[0] for line in record) == sorted(archive.namelist())
        assert archive.read("tinyweb/__init__.py") == b'__version__ = "2.0.0"\n'
        assert "tinyweb = tinyweb:main" in archive.read("tinyweb-2.0.0.dist-info/entry_points.txt").decode()


def test_requires_python_of_a_made_wheel_is_honoured(
    publish: Callable[..., Path], uv_bin: Path, tmp_path: Path
) -> None:
    publish("tinyutil", "9.0.0", requires_python=">=3.99")
    venv = make_venv(uv_bin, tmp_path / "venv")

    run([uv_bin, "pip", "install", "--python", venv, "tinyutil"])

    assert installed_versions(uv_bin, venv) == {"tinyutil": "1.1.0"}


def test_published_version_is_seen_at_once_and_gone_after_the_test(
    publish: Callable[..., Path], make_project: MakeProject, uv_bin: Path
) -> None:
    project = make_project("workspace")
    publish("tinyweb", "1.2.1")

    locked = run([uv_bin, "lock", "--upgrade-package", "tinyweb"], cwd=project)

    assert "Updated tinyweb v1.0.0 -> v1.2.1" in locked.stderr


def test_repacked_uv_build_keeps_its_binary(tmp_path: Path) -> None:
    wheel = repack_installed("uv-build", tmp_path)

    assert wheel.name.startswith("uv_build-") and wheel.name.endswith("-py3-none-manylinux_2_17_x86_64.whl")
    with zipfile.ZipFile(wheel) as archive:
        (binary,) = [info for info in archive.infolist() if info.filename.endswith(".data/scripts/uv-build")]
        assert (binary.external_attr >> 16) & 0o111
        assert not [name for name in archive.namelist() if "__pycache__" in name or name.endswith(".pyc")]
        dist_info = next(
            name.split("/")[0] for name in archive.namelist() if name.endswith(".dist-info/WHEEL")
        )
        wheel_file = archive.read(f"{dist_info}/WHEEL").decode()
        assert [line for line in wheel_file.splitlines() if line.startswith("Tag:")] == [
            "Tag: py3-none-manylinux_2_17_x86_64"
        ]
        assert not {"INSTALLER", "REQUESTED", "direct_url.json"} & {
            n.split("/")[-1] for n in archive.namelist()
        }


def test_every_build_backend_builds_from_the_local_index(make_project: MakeProject, uv_bin: Path) -> None:
    project = make_project("backends")

    synced = run([uv_bin, "sync", "--locked"], cwd=project)

    assert "Installed 4 packages" in synced.stderr
    code = "import with_setuptools as a, with_hatchling as b, with_flit as c, with_uv_build as d\n"
    code += "print(a.BACKEND, b.BACKEND, c.BACKEND, d.BACKEND)"
    shown = run([project / ".venv" / "bin" / "python", "-c", code])
    assert shown.stdout == "setuptools hatchling flit-core uv_build\n"


def test_repacked_setuptools_builds_the_single_project(make_project: MakeProject, uv_bin: Path) -> None:
    project = make_project("single")

    built = run([uv_bin, "build", "--wheel"], cwd=project)

    assert "Successfully built dist/single-0.1.0-py3-none-any.whl" in built.stderr
    assert (project / "dist" / "single-0.1.0-py3-none-any.whl").is_file()


def test_workspace_project_is_a_committed_repository_locked_on_the_index(
    make_project: MakeProject, index: LocalIndex, uv_bin: Path
) -> None:
    project = make_project("workspace")

    lock = (project / "uv.lock").read_text()
    assert f'source = {{ registry = "{index.url}" }}' in lock
    assert 'members = [\n    "core",\n    "webapp",\n    "webapp-deploy",\n]' in lock
    assert 'source = { virtual = "." }' in lock
    assert run(["git", "branch", "--show-current"], cwd=project).stdout == "main\n"
    assert run(["git", "rev-list", "--count", "HEAD"], cwd=project).stdout == "1\n"
    assert "uv.lock" in run(["git", "ls-files"], cwd=project).stdout.split()
    assert run(["git", "log", "-1", "--format=%an <%ae>"], cwd=project).stdout == (
        "venvkeeper tests <tests@venvkeeper.invalid>\n"
    )

    run([uv_bin, "sync", "--locked"], cwd=project)

    shown = run([project / ".venv" / "bin" / "webapp"])
    assert shown.stdout == "webapp 0.1.0 (core 0.1.0, tinyweb 1.0.0, tinydb 1.2.0)\nhello, world\n"
    assert run(["git", "status", "--porcelain"], cwd=project).stdout == ""


def test_each_make_project_call_gets_its_own_copy(make_project: MakeProject) -> None:
    first = make_project("single")
    second = make_project("single")

    assert first != second
    assert (first / "uv.lock").read_text() == (second / "uv.lock").read_text()


def test_stopped_index_refuses_and_started_index_serves_on_the_same_url(
    index: LocalIndex, fresh_uv_cache: Path, uv_bin: Path, tmp_path: Path
) -> None:
    venv = make_venv(uv_bin, tmp_path / "venv")
    url = index.url

    index.stop()
    failed = run([uv_bin, "pip", "install", "--python", venv, "tinydb"], check=False)
    index.start()
    run([uv_bin, "pip", "install", "--python", venv, "tinydb"])

    assert failed.returncode == 2
    assert f"Failed to fetch: {url}/tinydb/" in failed.stderr
    assert "Connection refused" in failed.stderr
    assert index.url == url
    assert installed_versions(uv_bin, venv) == {"tinydb": "1.2.0"}
    assert any(fresh_uv_cache.iterdir())


def test_unpublished_version_is_gone_and_restore_brings_it_back(tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "index")
    index.publish(make_wheel(tmp_path, "tinydb", "1.0.0"))
    snapshot = index.snapshot()
    index.publish(make_wheel(tmp_path, "tinydb", "2.0.0"))

    assert index.unpublish("tinydb", "1.0") == ["tinydb-1.0.0-py3-none-any.whl"]
    assert index.published() == ["tinydb-2.0.0-py3-none-any.whl"]
    with pytest.raises(
        LocalIndexError, match=r"tinydb 1\.0 is not published on http://127\.0\.0\.1:\d+/simple"
    ):
        index.unpublish("tinydb", "1.0")

    index.restore(snapshot)
    assert index.published() == ["tinydb-1.0.0-py3-none-any.whl"]


def test_hermetic_environment_hides_the_machine(hermetic: dict[str, str], index: LocalIndex) -> None:
    assert (
        os.environ["UV_DEFAULT_INDEX"]
        == os.environ["UV_INDEX_URL"]
        == os.environ["PIP_INDEX_URL"]
        == index.url
    )
    assert os.environ["PIP_CONFIG_FILE"] == os.devnull
    assert os.environ["UV_PYTHON_DOWNLOADS"] == "never"
    leaked = {"VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"}
    assert not leaked & set(os.environ)
    assert Path.home() == Path(hermetic["HOME"])
    assert not any(Path.home().iterdir())
    # No /etc/pip.conf, no PIP_FIND_LINKS: pip's whole configuration is the hermetic one.
    assert run([sys.executable, "-m", "pip", "config", "list"]).stdout.splitlines() == [
        ":env:.config-file='/dev/null'",
        ":env:.disable-pip-version-check='1'",
        f":env:.index-url='{index.url}'",
        ":env:.no-input='1'",
    ]


def test_find_python_finds_the_running_minor_and_not_a_missing_one() -> None:
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"

    found = find_python(minor)

    assert found is not None
    assert run([found, "-c", "import sys; print(sys.version_info[:2])"]).stdout == f"{sys.version_info[:2]}\n"
    assert find_python("2.99") is None


def test_template_placeholders_are_filled_and_checked(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "demo").mkdir(parents=True)
    (templates / "demo" / "pyproject.toml").write_text(
        '[tool.uv]\nindex-url = "{{INDEX_URL}}"  # {{GREETING}}\n'
    )

    rendered = render_template(
        "demo", tmp_path / "a", {"INDEX_URL": "http://x/simple", "GREETING": "hi"}, templates_dir=templates
    )
    assert (rendered / "pyproject.toml").read_text() == '[tool.uv]\nindex-url = "http://x/simple"  # hi\n'

    with pytest.raises(ProjectTemplateError, match=r"pyproject.toml needs a value for \['GREETING'\]"):
        render_template("demo", tmp_path / "b", {"INDEX_URL": "u"}, templates_dir=templates)
    assert not (tmp_path / "b").exists()
    with pytest.raises(ProjectTemplateError, match=r"has no placeholder for \['COLOUR'\]"):
        render_template(
            "demo", tmp_path / "c", {"INDEX_URL": "u", "GREETING": "", "COLOUR": ""}, templates_dir=templates
        )
    with pytest.raises(ProjectTemplateError, match=r"no fixture project 'nope'.*there are \['demo'\]"):
        render_template("nope", tmp_path / "d", {}, templates_dir=templates)


def test_the_templates_the_suite_relies_on_exist() -> None:
    assert {"workspace", "backends", "single"} <= set(template_names())
