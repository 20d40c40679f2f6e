"""Running venvkeeper from tests: in-process through ``cli.main`` (fast), or as a real process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from venvkeeper.cli import commands
from venvkeeper.cli.main import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out)
        return data

    @property
    def error_line(self) -> str:
        """The one ``error:`` line (and there must be exactly one)."""
        lines = [line for line in self.err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, self.err
        return lines[0]


def vk(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Outcome:
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def vk_click(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Outcome:
    """The command as click parses and runs it: cli.main answers simple deploys (and verify, doctor)
    without click (cli/fastdeploy.py, cli/fastchecks.py), so a test of both parsers runs this too."""
    capsys.readouterr()
    try:
        commands.cli.main(args=[str(a) for a in args], prog_name="venvkeeper", standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def vk_process(*args: str | Path, cwd: Path | None = None, timeout: float = 180) -> Outcome:
    proc = subprocess.run(
        [sys.executable, "-m", "venvkeeper", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def run_in_env(env: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a program from the environment's bin/ (through the --env symlink, as a service would)."""
    return subprocess.run(
        [str(env / "bin" / program), *args], capture_output=True, text=True, check=False, timeout=60
    )


def snapshot(root: Path) -> dict[str, str]:
    """Every file, link and directory under ``root`` with a digest of its content (for 'untouched')."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def generations(env: Path) -> list[str]:
    """Entries of the generations directory (complete ones have NNNN and NNNN.json).

    A generation's sealed manifest (NNNN.manifest.json) and its SBOM (NNNN.sbom.cdx.json) are left
    out; ``leftovers`` reports one that outlived its record.
    """
    return [n for n in _generation_entries(env) if not n.endswith(_BESIDE)]


_BESIDE = (".manifest.json", ".sbom.cdx.json")  # written beside a generation's record


def _generation_entries(env: Path) -> list[str]:
    home = env.parent / f"{env.name}.venvkeeper" / "generations"
    return sorted(p.name for p in home.iterdir()) if home.is_dir() else []


def leftovers(env: Path) -> list[str]:
    """What an interrupted run could leave behind: staging copies, incomplete generations."""
    home = env.parent / f"{env.name}.venvkeeper"
    tmp = sorted(p.name for p in (home / "tmp").iterdir()) if (home / "tmp").is_dir() else []
    gens = generations(env)
    incomplete = [g for g in gens if not g.endswith(".json") and f"{g}.json" not in gens]
    orphans = [
        n
        for n in _generation_entries(env)
        if n.endswith(_BESIDE) and n.replace(".manifest", "").replace(".sbom.cdx", "") not in gens
    ]
    return tmp + incomplete + orphans


def site_packages(env: Path) -> Path:
    (found,) = (env / "lib").glob("python3*/site-packages")
    return found


def commit_all(root: Path, message: str = "change") -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", message], cwd=root, check=True, capture_output=True)
