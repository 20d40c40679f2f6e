"""Members whose version comes from git: setuptools-scm, hatch-vcs and uv-dynamic-versioning.

deploy builds from a staging copy; the version it installs must be exactly the one raw ``uv build``
computes from the same tree (a copy of it, ``.git`` included: tags, distance, commit id, the dirty
state and setuptools-scm's date), and the source, ``.git`` included, must not change at all: not
even git's index may be refreshed. Without ``.git`` (an unpacked sdist) the plugins read PKG-INFO;
with neither, the error names the plugin and its override variable.

The plugins are served hermetically: repacked with their requirements from the dev environment
(the dev group lists them) into the local index, like the build backends.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from support.gitremote import add_remote
from support.index import LocalIndex
from support.wheels import repack_with_requirements
from vk import Outcome, snapshot, vk

PLUGINS = ("setuptools-scm", "hatch-vcs", "uv-dynamic-versioning")
# The interpreter the session's python runs on: the repacked plugin requirements (MarkupSafe) carry
# its tag, so every build here, raw or deployed, uses it.
PYTHON = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")

_PYPROJECTS = {
    "setuptools-scm": """\
[project]
name = "{name}"
dynamic = ["version"]
requires-python = ">=3.11"

[build-system]
requires = ["setuptools>=64", "setuptools-scm>=8"]
build-backend = "setuptools.build_meta"

[tool.setuptools]
packages = ["{module}"]

[tool.setuptools_scm]
{extra}
""",
    "hatch-vcs": """\
[project]
name = "{name}"
dynamic = ["version"]
requires-python = ">=3.11"

[build-system]
requires = ["hatchling", "hatch-vcs"]
build-backend = "hatchling.build"

[tool.hatch.version]
source = "vcs"
{extra}
""",
    "uv-dynamic-versioning": """\
[project]
name = "{name}"
dynamic = ["version"]
requires-python = ">=3.11"

[build-system]
requires = ["hatchling", "uv-dynamic-versioning"]
build-backend = "hatchling.build"

[tool.hatch.version]
source = "uv-dynamic-versioning"

[tool.uv-dynamic-versioning]
dirty = true
{extra}
""",
}


@pytest.fixture(scope="module")
def plugins_served(index_server: LocalIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    wheels = repack_with_requirements(PLUGINS, tmp_path_factory.mktemp("plugin-wheels"))
    added = [w for w in wheels if w.name not in index_server.published()]
    for wheel in added:
        index_server.publish(wheel)
    yield
    for wheel in added:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        index_server.unpublish(name, str(version))


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc


def _git(repo: Path, *args: str) -> str:
    return _run(["git", *args], repo).stdout


def _write_project(project: Path, plugin: str, name: str, extra: str = "") -> None:
    module = name.replace("-", "_")
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text(_PYPROJECTS[plugin].format(name=name, module=module, extra=extra))
    (project / module).mkdir()
    (project / module / "__init__.py").write_text("VALUE = 1\n")
    (project / ".gitignore").write_text("*.egg-info/\nbuild/\ndist/\n__pycache__/\n")


def _lock(project: Path, uv_bin: Path) -> None:
    _run([uv_bin, "lock", "--python", PYTHON], project)


def _history(repo: Path, project: Path, *, annotated: bool) -> None:
    """Tag v1.2.0, one commit after it, and an uncommitted edit to a tracked file."""
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    if annotated:
        _git(repo, "tag", "-a", "v1.2.0", "-m", "release 1.2.0")
    else:
        _git(repo, "tag", "v1.2.0")
    module = next(p for p in project.iterdir() if (p / "__init__.py").is_file())
    (module / "__init__.py").write_text("VALUE = 2\n")
    _git(repo, "commit", "-qam", "second")
    (module / "__init__.py").write_text("VALUE = 3  # not committed\n")


def _raw_version(tree: Path, project_rel: str, uv_bin: Path, scratch: Path) -> str:
    """The version raw ``uv build --wheel`` computes, in a full copy of ``tree`` (``.git`` included)."""
    copy = scratch / "raw"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(tree, copy, symlinks=True)
    out = scratch / "raw-out"
    shutil.rmtree(out, ignore_errors=True)
    _run([uv_bin, "build", "--wheel", "--python", PYTHON, "--out-dir", out], copy / project_rel)
    (wheel,) = out.glob("*.whl")
    return str(parse_wheel_filename(wheel.name)[1])


def _installed(env: Path, name: str) -> str:
    proc = subprocess.run(
        [env / "bin" / "python", "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    # Normalised as the wheel's file name is (PEP 440: a commit id such as 0164755 in the local part
    # is a number, written 164755), so the two compare as the same version.
    return str(Version(proc.stdout.strip()))


def _deploy(capsys: pytest.CaptureFixture[str], project: Path, env: Path) -> Outcome:
    return vk(capsys, "deploy", project, "--env", env, "--python", PYTHON)


@pytest.mark.usefixtures("plugins_served")
@pytest.mark.parametrize(
    ("plugin", "annotated"),
    [("setuptools-scm", True), ("hatch-vcs", False), ("uv-dynamic-versioning", True)],
)
def test_version_from_git_is_raw_uvs_and_the_source_is_untouched(
    plugin: str, annotated: bool, tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    name = "vcsapp"
    _write_project(repo, plugin, name)
    _run(["git", "init", "-q", "-b", "main"], repo)
    _lock(repo, uv_bin)
    _history(repo, repo, annotated=annotated)
    expected = _raw_version(repo, ".", uv_bin, tmp_path)
    assert expected.startswith("1.2.1.dev1") or expected.startswith("1.2.0.post1"), expected
    assert "+" in expected  # a local version: commit id (and the dirty state where the plugin shows it)

    before = snapshot(repo)
    env = tmp_path / "env"
    done = _deploy(capsys, repo, env)
    assert done.code == 0, done.err
    assert _installed(env, name) == expected
    assert snapshot(repo) == before  # .git included: no index refresh, no object, no ref

    # A new tag and no file change: the version moves, so the member is built again, not reused.
    _git(repo, "tag", "-a" if annotated else "-f", "v2.0.0", *(["-m", "2.0.0"] if annotated else []))
    retagged = _raw_version(repo, ".", uv_bin, tmp_path)
    assert retagged != expected
    before = snapshot(repo)
    again = _deploy(capsys, repo, env)
    assert again.code == 0, again.err
    assert _installed(env, name) == retagged
    assert snapshot(repo) == before


@pytest.mark.usefixtures("plugins_served")
def test_project_in_a_subdirectory_sees_the_whole_repository(
    tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """setuptools-scm with ``root = ".."``: the repository's top level, and an uncommitted change
    outside the project (it makes the whole tree dirty), must be staged too."""
    repo = tmp_path / "repo"
    project = repo / "service"
    _write_project(project, "setuptools-scm", "subapp", extra='root = ".."')
    (repo / "README").write_text("top\n")
    _run(["git", "init", "-q", "-b", "main"], repo)
    _lock(project, uv_bin)
    _history(repo, project, annotated=True)
    _git(repo, "commit", "-qam", "project clean")  # the project's own edit committed ...
    (repo / "README").write_text("top, edited\n")  # ... the tree is dirty outside it
    expected = _raw_version(repo, "service", uv_bin, tmp_path)
    assert ".d" in expected.split("+")[1], expected  # setuptools-scm's dirty-tree date

    before = snapshot(repo)
    env = tmp_path / "env"
    done = _deploy(capsys, project, env)
    assert done.code == 0, done.err
    assert _installed(env, "subapp") == expected
    assert snapshot(repo) == before


def _unpacked_sdist(repo: Path, uv_bin: Path, dest: Path) -> Path:
    out = dest / "sdist-out"
    _run([uv_bin, "build", "--sdist", "--python", PYTHON, "--out-dir", out], repo)
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(dest / "unpacked", filter="data")
    (tree,) = (dest / "unpacked").iterdir()
    return tree


@pytest.mark.usefixtures("plugins_served")
@pytest.mark.parametrize(
    ("plugin", "ignored"),
    [("setuptools-scm", False), ("hatch-vcs", False), ("uv-dynamic-versioning", False), ("hatch-vcs", True)],
)
def test_unpacked_sdist_without_git_takes_its_pkg_info_version(
    plugin: str, ignored: bool, tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ignored``: the sdist's .gitignore names PKG-INFO (the file list outside git honours it)."""
    repo = tmp_path / "repo"
    _write_project(repo, plugin, "sdistapp")
    if ignored:
        with (repo / ".gitignore").open("a") as gitignore:
            gitignore.write("PKG-INFO\n")
    _run(["git", "init", "-q", "-b", "main"], repo)
    _lock(repo, uv_bin)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    _git(repo, "tag", "v3.1.4")
    tree = _unpacked_sdist(repo, uv_bin, tmp_path)
    assert not (tree / ".git").exists()
    assert "Version: 3.1.4" in (tree / "PKG-INFO").read_text()
    assert (tree / "uv.lock").is_file()
    expected = _raw_version(tree, ".", uv_bin, tmp_path)
    assert expected == "3.1.4"

    before = snapshot(tree)
    env = tmp_path / "env"
    done = _deploy(capsys, tree, env)
    assert done.code == 0, done.err
    assert _installed(env, "sdistapp") == expected
    assert snapshot(tree) == before


_REMEDY = {
    "setuptools-scm": "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_NOVERSION",
    "hatch-vcs": "SETUPTOOLS_SCM_PRETEND_VERSION",  # hatch-vcs passes no name: the _FOR_ form is ignored
    "uv-dynamic-versioning": "UV_DYNAMIC_VERSIONING_BYPASS",
}


@pytest.mark.usefixtures("plugins_served")
@pytest.mark.parametrize("plugin", PLUGINS)
def test_no_git_and_no_pkg_info_names_the_plugin_and_its_override(
    plugin: str, tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    _write_project(repo, plugin, "noversion")
    _run(["git", "init", "-q", "-b", "main"], repo)
    _lock(repo, uv_bin)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    tree = tmp_path / "export"  # what `git archive` or a GitHub tarball gives: no .git, no PKG-INFO
    tree.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=repo, capture_output=True, check=True)
    subprocess.run(["tar", "x"], cwd=tree, input=archive.stdout, check=True)
    raw = subprocess.run(
        [uv_bin, "build", "--wheel", "--python", PYTHON, "--out-dir", tmp_path / "raw-out"],
        cwd=shutil.copytree(tree, tmp_path / "raw"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert raw.returncode != 0  # raw uv cannot compute a version either

    before = snapshot(tree)
    done = _deploy(capsys, tree, tmp_path / "env")
    assert done.code == 2, done.err
    line = done.error_line
    assert f"member noversion (./): {plugin} cannot compute its version" in line
    hint = next(ln for ln in done.err.splitlines() if ln.startswith("hint:"))
    assert _REMEDY[plugin] in hint
    assert "uv lock" not in done.err.split("\n  |")[0]
    assert snapshot(tree) == before
    assert not (tmp_path / "env").exists()

    # The remedy the hint names works.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(_REMEDY[plugin], "4.5.6")
        fixed = _deploy(capsys, tree, tmp_path / "env")
    assert fixed.code == 0, fixed.err
    assert _installed(tmp_path / "env", "noversion") == "4.5.6"


@pytest.mark.usefixtures("plugins_served")
def test_lock_check_builds_dynamic_metadata_from_the_staging_copy(
    tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dependencies read by the backend (setuptools' dynamic ``dependencies``): ``uv lock --check``
    cannot take them from pyproject.toml and asks the backend, so setuptools-scm runs there too."""
    repo = tmp_path / "repo"
    _write_project(repo, "setuptools-scm", "dynapp")
    pyproject = repo / "pyproject.toml"
    text = pyproject.read_text().replace('dynamic = ["version"]', 'dynamic = ["version", "dependencies"]')
    dynamic = '\n[tool.setuptools.dynamic]\ndependencies = { file = ["requirements.txt"] }\n'
    pyproject.write_text(text + dynamic)
    (repo / "requirements.txt").write_text("tinyextra\n")
    _run(["git", "init", "-q", "-b", "main"], repo)
    _lock(repo, uv_bin)
    assert 'name = "tinyextra"' in (repo / "uv.lock").read_text()
    _history(repo, repo, annotated=False)
    expected = _raw_version(repo, ".", uv_bin, tmp_path)

    before = snapshot(repo)
    env = tmp_path / "env"
    done = _deploy(capsys, repo, env)
    assert done.code == 0, done.err
    assert _installed(env, "dynapp") == expected
    assert _installed(env, "tinyextra")
    assert snapshot(repo) == before


# $0: the Python to run venvkeeper with, $1 the repository (mounted read-only over itself), $2 the
# project in it, $3 --env, $4 --python. The refused touch proves the mount is read-only.
_READ_ONLY_DEPLOY = (
    'mount --bind -o ro "$1" "$1" && ! touch "$1/.probe" 2>/dev/null && '
    'exec "$0" -m venvkeeper deploy "$2" --env "$3" --python "$4"'
)


@pytest.mark.usefixtures("plugins_served")
def test_deploy_from_a_read_only_checkout(tmp_path: Path, uv_bin: Path) -> None:
    """The whole repository, .git included, is a read-only mount: git in the staging copy must not
    need to write there (no index refresh, no lock file)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed, so no read-only bind mount can be made")
    repo = tmp_path / "repo"
    _write_project(repo, "uv-dynamic-versioning", "roapp")
    _run(["git", "init", "-q", "-b", "main"], repo)
    _lock(repo, uv_bin)
    _history(repo, repo, annotated=True)
    expected = _raw_version(repo, ".", uv_bin, tmp_path)
    before = snapshot(repo)
    env = tmp_path / "env"
    unshare = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _READ_ONLY_DEPLOY]
    proc = subprocess.run(
        [*unshare, sys.executable, str(repo), str(repo), str(env), PYTHON],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0 and "mount" in proc.stderr and "permission denied" in proc.stderr.lower():
        pytest.skip(f"cannot bind-mount read-only here (unshare --mount needs CAP_SYS_ADMIN): {proc.stderr}")
    assert proc.returncode == 0, proc.stderr
    assert _installed(env, "roapp") == expected
    assert snapshot(repo) == before


@pytest.mark.usefixtures("plugins_served")
def test_git_dir_of_a_hook_does_not_reach_the_plugin(
    tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy from a git hook (post-receive) runs with GIT_DIR set: the plugin must still ask the
    staging copy's repository, not write the source's index. (setuptools-scm drops GIT_* itself;
    dunamai, behind uv-dynamic-versioning, does not.)"""
    repo = tmp_path / "repo"
    _write_project(repo, "uv-dynamic-versioning", "hookapp")
    _run(["git", "init", "-q", "-b", "main"], repo)
    _lock(repo, uv_bin)
    _history(repo, repo, annotated=False)
    expected = _raw_version(repo, ".", uv_bin, tmp_path)
    before = snapshot(repo)
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    done = _deploy(capsys, repo, tmp_path / "env")
    assert done.code == 0, done.err
    assert _installed(tmp_path / "env", "hookapp") == expected
    assert snapshot(repo) == before


@pytest.mark.usefixtures("plugins_served")
def test_pack_builds_the_member_at_raw_uvs_version(
    tmp_path: Path, uv_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    _write_project(repo, "hatch-vcs", "packapp")
    _run(["git", "init", "-q", "-b", "main"], repo)
    _lock(repo, uv_bin)
    _history(repo, repo, annotated=True)
    expected = _raw_version(repo, ".", uv_bin, tmp_path)
    before = snapshot(repo)
    out = tmp_path / "bundle.tar.gz"
    done = vk(capsys, "pack", repo, "-o", out)
    assert done.code == 0, done.err
    with tarfile.open(out) as bundle:
        wheels = [Path(name).name for name in bundle.getnames() if name.endswith(".whl")]
    versions = {
        str(parse_wheel_filename(w)[0]): str(parse_wheel_filename(w)[1])
        for w in wheels
        if w.startswith("packapp")
    }
    assert versions == {"packapp": expected}
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("pyproject", "plugin"),
    [
        ('[build-system]\nrequires = ["setuptools>=64", "setuptools_scm[toml]>=8"]\n', "setuptools-scm"),
        ('[build-system]\nrequires = ["setuptools"]\n[tool.setuptools_scm]\n', "setuptools-scm"),
        ('[build-system]\nrequires = ["hatchling", "Hatch-VCS ; python_version>\'3\'"]\n', "hatch-vcs"),
        ('[build-system]\nrequires = ["hatchling"]\n[tool.hatch.version]\nsource = "vcs"\n', "hatch-vcs"),
        ('[build-system]\nrequires = ["hatchling", "uv-dynamic-versioning>=0.8"]\n', "uv-dynamic-versioning"),
        # Another source that may ask git (pdm's scm): listed, plugin unknown.
        ('[build-system]\nrequires = ["pdm-backend"]\n[tool.pdm.version]\nsource = "scm"\n', None),
        # Versions written in the member's own files: nothing but its files can change them.
        (
            '[build-system]\nrequires = ["setuptools"]\n[tool.setuptools.dynamic]\nversion = {attr = "V"}\n',
            "",
        ),
        ('[build-system]\nrequires = ["flit_core"]\nbuild-backend = "flit_core.buildapi"\n', ""),
        ('[build-system]\nrequires = ["hatchling"]\n[tool.hatch.version]\npath = "m/__init__.py"\n', ""),
        (
            '[tool.pdm.version]\nsource = "file"\npath = "v.py"\n',
            "",
        ),
    ],
)
def test_which_plugin_a_dynamic_version_comes_from(
    pyproject: str, plugin: str | None, tmp_path: Path
) -> None:
    from venvkeeper.project.vcsversion import dynamic_versions

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "pyproject.toml").write_text(
        '[project]\nname = "m"\ndynamic = ["version"]\n' + pyproject
    )
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "pyproject.toml").write_text('[project]\nname = "s"\nversion = "1.0"\n' + pyproject)
    found = dynamic_versions(tmp_path, [("m", "m"), ("s", "s")])
    assert [(d.member, d.plugin) for d in found] == ([] if plugin == "" else [("m", plugin)])


@pytest.mark.usefixtures("plugins_served")
def test_update_builds_its_candidate_and_deploys_the_new_commits_version(
    make_project: Callable[..., Path],
    publish: Callable[..., Path],
    tmp_path: Path,
    uv_bin: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The ``updatable`` service made a setuptools-scm package: update builds the member in its
    staging copies (candidate), commits the lock, and the deploy after it installs the version of
    the new commit (one further from the tag), as raw uv computes it."""
    project = make_project("updatable")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('version = "0.1.0"', 'dynamic = ["version"]')
    text = text.replace(
        "[dependency-groups]", '[tool.setuptools]\npackages = ["updatable"]\n\n[dependency-groups]'
    )
    build = (
        '[build-system]\nrequires = ["setuptools>=64", "setuptools-scm>=8"]\n'
        'build-backend = "setuptools.build_meta"\n'
    )
    pyproject.write_text(text + "\n[tool.setuptools_scm]\n\n" + build)
    (project / "updatable").mkdir()
    (project / "updatable" / "__init__.py").write_text("")
    (project / ".gitignore").write_text("*.egg-info/\nbuild/\n")
    _lock(project, uv_bin)
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "a package with its version from git")
    _git(project, "tag", "v1.0.0")
    add_remote(project, tmp_path)
    env = tmp_path / "srv" / ".venv"
    deployed = _deploy(capsys, project, env)
    assert deployed.code == 0, deployed.err
    assert _installed(env, "updatable") == "1.0.0"
    publish("tinydb", "1.2.1")

    result = vk(capsys, "update", project, "--env", env, "--json")
    assert result.code == 0, result.out + result.err
    assert result.json["outcome"] == "updated"
    expected = _raw_version(project, ".", uv_bin, tmp_path)
    assert expected.startswith("1.0.1.dev1+g"), expected
    assert _installed(env, "updatable") == expected
