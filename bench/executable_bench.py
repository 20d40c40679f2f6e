"""Executable benchmark (issue 14): a ``pack --executable`` app's warm start against its console script.

    python bench/executable_bench.py [--rounds N] [--python PY] [--work-dir DIR] [--keep-work]

The issue's target: "executable warm start: <= 1.3x the console script in a plain venv".

Setup (not timed): the git-tracked files of examples/webapp are copied into a new git repository with
the ``[tool.venvkeeper.hooks]`` table removed; ``venvkeeper pack --executable --script S`` writes
one app per script below (downloading from PyPI into a bench-owned cache), and each runs once to
install itself into a bench-owned ``XDG_CACHE_HOME``. The plain venv is ``uv venv`` + ``uv pip install
--offline --no-deps`` of exactly the bundle's wheels (taken out of an executable's zip).

Two scripts: ``webapp`` (the member's; without arguments it prints its usage and exits 2, after
importing flask) and ``idna --help`` (a dependency's, which starts about as fast as Python does: what
a warm start adds shows plainest there). For each, timed, interleaved round by round after one untimed
run of each, whole process (start to exit): the app, the same script in the plain venv, and
(informational) the app's installed script run directly (uv's relocatable script: an sh trampoline
before Python); and ``$PY -c pass``. Nothing fails on the target: the script measures and reports.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
from benchlib import EXAMPLE, REPO, BenchError, Run, Tools, bench_env, ms, run
from deploy_bench import git, strip_table

PROG = "executable_bench"
TARGET = 1.3  # the app's warm start over the plain venv's script
# script -> (its arguments, its exit status, its stderr: None for anything)
SCRIPTS: dict[str, tuple[list[str], int, str | None]] = {
    "webapp": ([], 2, "usage: webapp check"),
    "idna": (["--help"], 0, None),
}


@dataclass
class Timing:
    key: str
    label: str
    argv: list[str]
    script: str  # whose exit status and stderr are checked; "" for one that must exit 0
    wall: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)


def setup(tools: Tools, work: Path, env: dict[str, str]) -> tuple[dict[str, Path], Path]:
    """The executables by script (installed in ``env``'s cache) and the plain venv."""
    project = work / "project"
    listed = run(["git", "-C", str(REPO), "ls-files", "-z", "--", str(EXAMPLE)], env, work)
    for name in filter(None, listed.stdout.split("\0")):
        dest = project / (REPO / name).relative_to(EXAMPLE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(strip_table(pyproject.read_text(), "tool.venvkeeper.hooks"))
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "benchmark copy of examples/webapp, hooks removed")
    apps = {script: work / f"app-{script}" for script in SCRIPTS}
    print("packing the executables (not timed; downloads the wheels)", file=sys.stderr, flush=True)
    for script, app in apps.items():
        pack = [tools.venvkeeper, "pack", str(project), "-o", str(app), "--executable", "--script", script]
        checked(pack, env, work, "")
        checked([str(app), *SCRIPTS[script][0]], env, work, script)  # the first run installs
    wheels = work / "wheels"
    with (
        zipfile.ZipFile(apps["webapp"]) as zf,
        tarfile.open(fileobj=io.BytesIO(zf.read("bundle.tar.gz"))) as tar,
    ):
        for member in tar.getmembers():
            if member.name.startswith("venvkeeper-bundle/wheels/"):
                member.name = member.name.rsplit("/", 1)[1]
                tar.extract(member, wheels, filter="data")
    plain = work / "plain"
    checked(
        [tools.uv, "venv", "--quiet", "--no-project", "--python", tools.python, str(plain)], env, work, ""
    )
    install = [tools.uv, "pip", "install", "--quiet", "--offline", "--no-index", "--no-deps"]
    python = str(plain / "bin" / "python")
    checked([*install, "--python", python, *map(str, sorted(wheels.iterdir()))], env, work, "")
    return apps, plain


def checked(argv: Sequence[str], env: dict[str, str], work: Path, script: str) -> Run:
    """Run ``argv``: it must exit as ``script`` does (``""``: exit 0), else BenchError."""
    code, stderr = SCRIPTS[script][1:] if script else (0, None)
    result = run(argv, env, work)
    if result.returncode != code or (stderr is not None and result.stderr.strip() != stderr):
        raise benchlib.failed(" ".join(argv[:3]), result)
    return result


def timings_for(apps: dict[str, Path], plain: Path, python: str, env: dict[str, str]) -> list[Timing]:
    """What is timed: per script the app, the plain venv's script and the installed one; then $PY."""
    (installed,) = (Path(env["XDG_CACHE_HOME"]) / "venvkeeper" / "apps").glob("*/venv/bin")
    out = []
    for script, (args, _, _) in SCRIPTS.items():
        shown = " ".join([script, *args])
        app = " ".join([f"$APP-{script}", *args])
        out += [
            Timing(f"{script}-app", f"{app} (warm)", [str(apps[script]), *args], script),
            Timing(f"{script}-plain", f"$PLAIN/bin/{shown}", [str(plain / "bin" / script), *args], script),
            Timing(
                f"{script}-installed", f"$APPDIR/venv/bin/{shown}", [str(installed / script), *args], script
            ),
        ]
    return [*out, Timing("pass", "$PY -c pass", [python, "-c", "pass"], "")]


def measure(timings: list[Timing], rounds: int, env: dict[str, str], work: Path) -> None:
    for t in timings:
        checked(t.argv, env, work, t.script)
    for i in range(rounds):
        for t in benchlib.rotated(i, timings):
            t.wall.append(checked(t.argv, env, work, t.script).wall_s)
        last = "  ".join(f"{t.key}={t.wall[-1] * 1000:.0f}ms" for t in timings)
        benchlib.progress("warm start", i, rounds, last)


SECTION = "## executable warm start (issue 14)"


def report(timings: list[Timing]) -> list[str]:
    """The table and the verdicts, as Markdown lines (printed, and written with --write)."""
    by = {t.key: t for t in timings}
    rows = []
    for t in timings:
        anchor = by.get(f"{t.script}-plain")
        ratio = f"{t.median / anchor.median:.2f}x" if anchor else ""
        rows.append([t.label, ms(t.median), f"{ms(min(t.wall))}-{ms(max(t.wall))}", ratio])
    lines = [
        *benchlib.table_lines(["command", "median ms", "range ms", "÷ the plain venv's script"], rows),
        "",
    ]
    lines.append("`$APPDIR` is `$XDG_CACHE_HOME/venvkeeper/apps/<key>`, where the apps installed themselves.")
    lines.append("")
    for script in SCRIPTS:
        ratio = by[f"{script}-app"].median / by[f"{script}-plain"].median
        met = "met" if ratio <= TARGET else "NOT met"
        lines.append(
            f"- executable warm start, {script}: {ratio:.2f}x the plain venv's (target <= {TARGET}x: {met})"
        )
    return lines


def markdown(timings: list[Timing], rounds: int, machine: dict[str, str], command: str) -> str:
    python_note = f"`$PY` = `{machine['python_path']}`, the apps' and the plain venv's"
    return "\n".join(
        [
            *benchlib.section_head(SECTION, command, machine, python_note),
            "",
            f"Wall-clock medians over {rounds} interleaved rounds (whole process, start to exit), warm page "
            "cache. See the docstring of `bench/executable_bench.py` for the setup.",
            "",
            *report(timings),
            "",
            benchlib.ROUNDS_NOTE,
            "",
            "### All rounds (ms)",
            "",
            *(f"- `{t.label}`: {', '.join(ms(x) for x in t.wall)}" for t in timings),
            "",
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--python", default=benchlib.default_python(), help="the apps' and the venv's Python")
    parser.add_argument("--work-dir", type=Path, default=benchlib.BENCH_DIR / ".work" / "executable")
    parser.add_argument("--keep-work", action="store_true", help="leave the work dir in place")
    parser.add_argument("--write", type=Path, metavar="FILE", help="replace this benchmark's section of FILE")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = tools.machine()
    env = {**bench_env(work / "uv-cache"), "XDG_CACHE_HOME": str(work / "xdg")}
    try:
        apps, plain = setup(tools, work, env)
        timings = timings_for(apps, plain, tools.python, env)
        measure(timings, args.rounds, env, work)
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    machine.setdefault("load", f"load average (1, 5, 15 min) {benchlib.load_average()} after")
    print("\n".join(report(timings)))
    benchlib.conclude(
        [],
        args.write,
        "executable_bench.py",
        argv,
        SECTION,
        lambda command: markdown(timings, args.rounds, machine, command),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
