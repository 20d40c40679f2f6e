"""Never writes into PROJECT_DIR, whatever the members' build backends.

Each deploy runs from a truly read-only tree: PROJECT_DIR is bind-mounted read-only over itself in
a private mount namespace (``unshare --mount``), and the same shell first proves that the mount
refuses a write. A deploy that wrote anything into the tree (setuptools' ``egg-info/`` and
``build/``, ``__pycache__``, a ``.venv``, uv's lock) would fail there; the tree's ``git status
--porcelain --ignored`` is compared before and after as well.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vk import Outcome, generations, run_in_env, snapshot

PROBE = ".venvkeeper-write-probe"

# $0 is the Python to run venvkeeper with, $1 PROJECT_DIR, $2 --env. The touch must fail (the mount
# is read-only) for the deploy to run at all; its message is the first line of stderr.
_READ_ONLY_DEPLOY = (
    'mount --bind -o ro "$1" "$1" && ! touch "$1/' + PROBE + '" && '
    'exec "$0" -m venvkeeper deploy "$1" --env "$2" --json'
)


@pytest.fixture(scope="module")
def read_only_mounts(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless this host can bind-mount a directory read-only in a private mount namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed, so no read-only bind mount can be made")
    probe = tmp_path_factory.mktemp("ro-probe")
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind -o ro "$0" "$0" && ! touch "$0/x" 2>/dev/null',
            probe,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0:
        pytest.skip(
            "cannot bind-mount a directory read-only in a private mount namespace here "
            f"(unshare --mount needs CAP_SYS_ADMIN): {proc.stderr.strip() or proc.returncode}"
        )


def deploy_read_only(project: Path, env: Path) -> Outcome:
    proc = subprocess.run(
        [
            *("unshare", "--mount", "--propagation", "private", "sh", "-c", _READ_ONLY_DEPLOY),
            *(sys.executable, str(project), str(env)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    result = Outcome(proc.returncode, proc.stdout, proc.stderr)
    # The tree really was read-only for the deploy: the write just before it was refused.
    assert result.err.splitlines()[:1] == [
        f"touch: cannot touch '{project}/{PROBE}': Read-only file system"
    ], result.err
    return result


def git_status(project: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def tree(project: Path) -> dict[str, str]:
    """The work tree's files and their content (git's own directory left out)."""
    return {k: v for k, v in snapshot(project).items() if k != ".git" and not k.startswith(".git/")}


def build_litter(project: Path) -> list[str]:
    return sorted(
        str(path.relative_to(project))
        for pattern in ("*.egg-info", "build", "__pycache__", ".venv", PROBE)
        for path in project.rglob(pattern)
        if ".git" not in path.relative_to(project).parts
    )


def assert_untouched(project: Path, status: str, files: dict[str, str]) -> None:
    assert git_status(project) == status
    assert tree(project) == files
    assert build_litter(project) == []


def imports(env: Path, code: str) -> str:
    proc = subprocess.run(
        [env / "bin" / "python", "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


BACKENDS_IMPORT = (
    "import with_setuptools, with_hatchling, with_flit, with_uv_build\n"
    "for m in (with_setuptools, with_hatchling, with_flit, with_uv_build): print(m.BACKEND, m.__file__)"
)
BACKENDS_MEMBERS = ["with-flit", "with-hatchling", "with-setuptools", "with-uv-build"]


def test_every_build_backend_deploys_from_a_read_only_tree(
    read_only_mounts: None, make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project("backends")
    env = tmp_path / "srv" / ".venv"
    status, files = git_status(project), tree(project)
    assert status == ""

    result = deploy_read_only(project, env)

    assert result.code == 0, result.err
    assert result.json["changed"] is True
    assert result.json["generation"] == 1
    assert sorted(result.json["rebuilt"]) == BACKENDS_MEMBERS
    lines = imports(env, BACKENDS_IMPORT).splitlines()
    assert [line.split()[0] for line in lines] == ["setuptools", "hatchling", "flit-core", "uv_build"]
    # Installed as real files in the environment, not pointing back into the tree.
    assert all(line.split()[1].startswith(f"{env}/lib/") for line in lines), lines
    assert_untouched(project, status, files)


def test_workspace_deploys_from_a_read_only_tree(
    read_only_mounts: None, make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project("workspace")
    env = tmp_path / "srv" / ".venv"
    status, files = git_status(project), tree(project)

    result = deploy_read_only(project, env)

    assert result.code == 0, result.err
    assert sorted(result.json["rebuilt"]) == ["core", "webapp"]
    script = run_in_env(env, "webapp")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("webapp 0.1.0 (core 0.1.0, tinyweb 1.0.0, tinydb 1.2.0)")
    assert_untouched(project, status, files)


def test_no_op_and_edited_deploys_from_a_read_only_tree(
    read_only_mounts: None, make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project("backends")
    env = tmp_path / "srv" / ".venv"
    assert deploy_read_only(project, env).code == 0
    status, files = git_status(project), tree(project)

    again = deploy_read_only(project, env)

    assert again.code == 0, again.err
    assert again.json["changed"] is False
    assert again.json["generation"] == 1
    assert_untouched(project, status, files)

    # Edited (not committed) before the tree goes read-only: the setuptools member, whose backend
    # is the one that writes egg-info/ and build/ beside the sources.
    init = project / "packages" / "with-setuptools" / "src" / "with_setuptools" / "__init__.py"
    init.write_text(init.read_text().replace('BACKEND = "setuptools"', 'BACKEND = "setuptools, edited"'))
    status, files = git_status(project), tree(project)
    assert status == " M packages/with-setuptools/src/with_setuptools/__init__.py\n"

    edited = deploy_read_only(project, env)

    assert edited.code == 0, edited.err
    assert (edited.json["generation"], edited.json["previous"]) == (2, 1)
    assert edited.json["rebuilt"] == ["with-setuptools"]
    assert sorted(edited.json["reused"]) == [m for m in BACKENDS_MEMBERS if m != "with-setuptools"]
    assert imports(env, "import with_setuptools; print(with_setuptools.BACKEND)") == "setuptools, edited\n"
    assert generations(env) == ["0001", "0001.json", "0002", "0002.json"]
    assert_untouched(project, status, files)
