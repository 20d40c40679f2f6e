"""``ansible-test sanity --requirements`` passes on the collection venvkeeper.venvkeeper (issue 15).

ansible-core (pinned in support.ansible) and the sanity tests' own requirements come from the
registry: e2e. Their virtual environments are kept between runs in the e2e cache.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.ansible import (
    COLLECTION,
    collection_checkout,
    controller_python,
    ensure_ansible_core,
    machine_environ,
    target_pythons,
)
from support.process import run


@pytest.mark.e2e
@pytest.mark.slow
def test_ansible_test_sanity_passes(tmp_path: Path) -> None:
    python = controller_python() or pytest.skip("no CPython 3.12-3.14 for ansible-core's controller")
    core = ensure_ansible_core(python)
    core.prepare_test_home()
    root = collection_checkout(tmp_path)
    # The modules run on the managed host's Python: compile and import them on every one of those
    # this machine has (ansible-test skips the others, saying so).
    versions, path = target_pythons(tmp_path / "pythons")

    started = time.monotonic()
    result = run(
        [core.bin / "ansible-test", "sanity", "--requirements", "--color", "no"],
        cwd=root,
        env=machine_environ(HOME=str(core.home), PATH=f"{core.bin}:{path}"),
        check=False,
        timeout=1200,
    )
    elapsed = time.monotonic() - started

    output = result.stdout + result.stderr
    assert result.returncode == 0, f"ansible-test sanity failed\n{output}"
    # It ran the tests that read the modules, not a selection that happened to skip them.
    for test in ("validate-modules", "pylint", "ansible-doc", "yamllint", "pep8"):
        assert f'Running sanity test "{test}"' in output, test
    for version in versions:
        assert f'Running sanity test "compile" on Python {version}' in output, version
        assert f'Running sanity test "import" on Python {version}' in output, version
    print(f"ansible-test sanity on Python {', '.join(versions)}: {elapsed:.1f}s")


def test_the_collection_is_licensed_like_the_project() -> None:
    # A collection tarball is shipped alone: it carries the project's license text as it is.
    license_text = (COLLECTION.parents[2] / "LICENSE").read_text()
    assert (COLLECTION / "LICENSE").read_text() == license_text
    assert license_text.startswith("MIT License")
    galaxy = (COLLECTION / "galaxy.yml").read_text()
    assert "license:\n  - MIT\n" in galaxy
