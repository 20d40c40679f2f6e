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
)
from support.process import run


@pytest.mark.e2e
@pytest.mark.slow
def test_ansible_test_sanity_passes(tmp_path: Path) -> None:
    python = controller_python() or pytest.skip(
        "ansible-core's controller needs CPython 3.12-3.14: none found"
    )
    core = ensure_ansible_core(python)
    core.write_pip_bootstrap()
    root = collection_checkout(tmp_path)
    minor = python.name.removeprefix("python")

    started = time.monotonic()
    # --python: the interpreter ansible-core runs on; the collection's modules run on the managed
    # host's Python, compiled and imported here by the same sanity tests.
    result = run(
        [core.bin / "ansible-test", "sanity", "--requirements", "--python", minor, "--color", "no"],
        cwd=root,
        env=machine_environ(HOME=str(core.home), PATH=f"{core.bin}:{machine_environ()['PATH']}"),
        check=False,
        timeout=1200,
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 0, f"ansible-test sanity failed\n{result.stdout}\n{result.stderr}"
    # It ran the tests that read the modules, not a selection that happened to skip them.
    for test in ("validate-modules", "pylint", "import", "ansible-doc", "yamllint"):
        assert f'Running sanity test "{test}"' in result.stdout + result.stderr, test
    print(f"ansible-test sanity: {elapsed:.1f}s")


def test_the_collection_is_licensed_like_the_project() -> None:
    # A collection tarball is shipped alone: it carries the project's license text as it is.
    license_text = (COLLECTION.parents[2] / "LICENSE").read_text()
    assert (COLLECTION / "LICENSE").read_text() == license_text
    assert license_text.startswith("MIT License")
    galaxy = (COLLECTION / "galaxy.yml").read_text()
    assert "license:\n  - MIT\n" in galaxy
