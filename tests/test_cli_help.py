"""The help (issue 15): every command's summary in full, and real metavars where click would say TEXT."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from venvkeeper.cli import commands
from vk import vk

README = Path(__file__).resolve().parents[1] / "README.md"


def _summaries(text: str) -> dict[str, str]:
    """The Commands section of ``venvkeeper --help``: each name and its summary, wrapped lines joined."""
    section = text.split("\nCommands:\n", 1)[1]
    found: dict[str, str] = {}
    name = ""
    for line in section.splitlines():
        entry = re.match(r"^  (\S+)\s+(.*)$", line)
        if entry:
            name, found[entry[1]] = entry[1], entry[2]
        elif line.strip():
            found[name] += " " + line.strip()
    return found


@pytest.mark.parametrize("columns", ["80", "60"])
def test_every_command_summary_is_shown_in_full(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    result = vk(capsys, "--help")

    assert result.code == 0, result.err
    summaries = _summaries(result.out)
    assert sorted(summaries) == sorted(commands.cli.commands)
    for name, summary in summaries.items():
        assert not summary.endswith("..."), f"{name}: {summary}"
        docstring = commands.cli.commands[name].help or ""
        assert summary == docstring.split("\n\n")[0].replace("\n", " ").strip()
    assert summaries["verify"].endswith("(exit 0 clean, 1 findings, 2 cannot verify).")


def test_deploy_help_shows_the_readmes_metavar_for_python(capsys: pytest.CaptureFixture[str]) -> None:
    deploy_section = README.read_text().split("### `venvkeeper deploy", 1)[1].split("\n### ", 1)[0]
    documented = re.search(r"\| `--python ([^`]+)` \|", deploy_section)
    assert documented is not None
    metavar = documented[1].replace("\\|", "|")
    assert metavar == "VERSION|PATH"

    result = vk(capsys, "deploy", "--help")

    assert result.code == 0, result.err
    assert re.search(rf"^  --python {re.escape(metavar)}\s", result.out, re.MULTILINE)
    assert re.search(r"^  --keep N\s", result.out, re.MULTILINE)
    assert re.search(r"^  --group NAME\s", result.out, re.MULTILINE)


@pytest.mark.parametrize("name", sorted(commands.cli.commands))
def test_no_option_shows_click_s_generic_text_metavar(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = vk(capsys, name, "--help")

    assert result.code == 0, result.err
    options = [line for line in result.out.splitlines() if line.startswith("  -")]
    assert options
    assert not [line for line in options if re.search(r" (TEXT|INTEGER|FLOAT)( RANGE)?\b", line)]
