"""venvkeeper's own distributions, as ``uv build`` makes them (hatchling from the tests' local index):
the wheel is typed and licensed, the sdist leaves out the benchmark records and scripts, and the
metadata names the project's URLs."""

from __future__ import annotations

import os
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import uv

from support.process import run

ROOT = Path(__file__).resolve().parents[1]


def test_the_sdist_and_wheel_carry_what_an_installer_needs(tmp_path: Path) -> None:
    # uv builds the wheel from the sdist, so nothing the sdist leaves out can be needed to build it.
    out = tmp_path / "dist"
    run([uv.find_uv_bin(), "build", "--quiet", "--out-dir", out, ROOT], env=os.environ, timeout=300)
    (sdist,) = out.glob("venvkeeper-*.tar.gz")
    (wheel,) = out.glob("venvkeeper-*-py3-none-any.whl")

    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "src/venvkeeper/py.typed"} <= members
    assert {"tests/conftest.py", "examples/webapp/uv.lock", "docs/architecture.md"} <= members
    # The benchmark records and scripts stay in the repository (pyproject's sdist exclude).
    assert "BENCHMARKS.md" not in members
    assert [name for name in members if name.startswith(("bench/", ".ci/"))] == []

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = Parser().parsestr(archive.read("venvkeeper-0.1.0.dist-info/METADATA").decode())
    assert {"venvkeeper/py.typed", "venvkeeper-0.1.0.dist-info/licenses/LICENSE"} <= names
    assert metadata["License-Expression"] == "MIT"
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL", []))
    assert sorted(urls) == ["Documentation", "Homepage", "Issues"]
    notice = "MIT License\n\nCopyright (c) 2026 venvkeeper developers\n"
    assert (ROOT / "LICENSE").read_text().startswith(notice)
