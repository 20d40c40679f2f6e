"""docs/recipes/air-gapped.md, run as written (issue 16): every ``venvkeeper`` line of the recipe, in its
order, with its shell variables pointing into this test's directory, against a project on the local
index. The recipe's ``curl`` of OSV's PyPI export is the one line not run: the test writes an export of
the same format (a zip of OSV JSON records) with one advisory against what the bundle carries."""

from __future__ import annotations

import json
import shlex
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from test_audit import OTHERS, TINYUTIL_ADVISORY
from test_docs_recipes import blocks, command_texts, invocations
from vk import Outcome, site_packages, vk

RECIPE = Path(__file__).resolve().parents[1] / "docs" / "recipes" / "air-gapped.md"


def _recipe_lines(variables: dict[str, Path]) -> list[list[str]]:
    """The recipe's venvkeeper command lines, in order, with ``$VAR`` / ``"$VAR"`` filled in."""
    found = []
    for block in blocks(RECIPE.read_text(), RECIPE.name):
        for text in command_texts(block):
            command = text
            # "$KEYS/release.key" too, not only a whole "$KEYS"; the longest names first ($OSV_ZIP, $OUT).
            for name, value in sorted(variables.items(), key=lambda item: -len(item[0])):
                command = command.replace(f'"${name}"', shlex.quote(str(value)))
                command = command.replace(f"${name}", str(value))
            found.extend(invocations(command))
    return found


def test_the_air_gapped_recipe_runs_as_written(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variables = {
        "APP": make_project("workspace"),
        "BUNDLE": tmp_path / "carry" / "app.vkb",
        "OSV_ZIP": tmp_path / "carry" / "PyPI-all.zip",
        "KEYS": tmp_path / "keys",
        "OUT": tmp_path / "handed-over",
        "ENV": tmp_path / "srv" / "app" / ".venv",
    }
    for directory in ("carry", "keys", "handed-over"):
        (tmp_path / directory).mkdir()
    with zipfile.ZipFile(variables["OSV_ZIP"], "w") as export:
        for record in (TINYUTIL_ADVISORY, *OTHERS):
            export.writestr(f"{record['id']}.json", json.dumps(record))
    lines = _recipe_lines(variables)
    assert [args[0] for args in lines] == [
        "keygen", "pack", "sbom", "audit", "install", "sbom", "audit", "keygen", "receipt", "verify",
    ]  # fmt: skip
    assert not any("$" in arg for args in lines for arg in args), lines

    outcomes: list[Outcome] = []
    for args in lines:
        outcome = vk(capsys, *args)
        outcomes.append(outcome)
        # The project's tinyutil 1.1.0 has an advisory in the export: both audits report it (exit 1),
        # and every other step succeeds.
        expected = 1 if args[0] == "audit" else 0
        assert outcome.code == expected, (args, outcome.out, outcome.err)
    for audit in (o for args, o in zip(lines, outcomes, strict=True) if args[0] == "audit"):
        assert "tinyutil 1.1.0: GHSA-tiny-util0-0001" in audit.out

    shipped = json.loads((tmp_path / "handed-over" / "bundle.cdx.json").read_text())
    running = json.loads((tmp_path / "handed-over" / "running.cdx.json").read_text())
    assert shipped["bomFormat"] == running["bomFormat"] == "CycloneDX"
    assert shipped["specVersion"] == running["specVersion"] == "1.6"
    purls = {c.get("purl") for c in shipped["components"]}
    assert "pkg:pypi/tinyutil@1.1.0" in purls
    assert purls == {c.get("purl") for c in running["components"]}

    # The receipt then proves the host still runs what it signed, and stops proving it after a drift.
    verify = lines[-1]
    installed = site_packages(variables["ENV"]) / "tinyutil" / "__init__.py"
    content = installed.read_bytes()
    installed.unlink()  # never written in place: the file may be a hard link into uv's cache
    installed.write_bytes(content + b"\nplanted = True\n")
    drifted = vk(capsys, *verify)
    assert drifted.code == 1, drifted.out
    assert "tinyutil/__init__.py" in drifted.out
