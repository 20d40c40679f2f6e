"""Carried-Python executable benchmark (issue 16): ``pack --executable --python-archive`` against the plain
``pack --executable``: the file's size, its first run and its warm run.

    python bench/executable_python_bench.py [--rounds N] [--first-rounds N] [--archive PBS.tar.gz]

Setup (not timed): examples/webapp copied into a new git repository, hooks removed (as
``executable_bench.py`` does); the plain executable (``--executable --script webapp``) and the carried
one (the same, with ``--python-archive``). The archive is ``--archive`` (a python-build-standalone
install_only archive of the bundle's Python), else this machine's Debian ``/usr/bin/python3.X`` with
``/usr/lib/python3.X`` laid out as one (``venvkeeper.bundle.carried.from_tree``), as the tests do.

Timed, whole process, ``webapp`` with no arguments (it imports flask, prints its usage, exits 2):
- first run: each round in a fresh, empty ``XDG_CACHE_HOME`` (the carried one also unpacks its Python);
- warm run: the installed app, interleaved round by round after one untimed run of each.
Nothing fails on the figures: the script measures and reports.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import benchlib
from benchlib import EXAMPLE, REPO, BenchError, Tools, bench_env, ms, run
from deploy_bench import git, strip_table

from venvkeeper.bundle import carried

PROG = "executable_python_bench"
USAGE = "usage: webapp check"


def project_copy(work: Path, env: dict[str, str]) -> Path:
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
    return project


def setup(tools: Tools, work: Path, env: dict[str, str], archive: Path | None) -> dict[str, Path]:
    """The two executables: {"plain": ..., "carried": ...}."""
    project = project_copy(work, env)
    if archive is None:
        version = tools_version(tools)
        archive = work / f"cpython-{version}-debian-install_only.tar.gz"
        carried.from_tree(Path("/usr"), version, archive, mtime=0)
    apps = {"plain": work / "app-plain", "carried": work / "app-carried"}
    print("packing the executables (not timed; downloads the wheels)", file=sys.stderr, flush=True)
    for kind, app in apps.items():
        more = ["--python-archive", str(archive)] if kind == "carried" else []
        argv = [tools.venvkeeper, "pack", str(project), "-o", str(app), "--executable", "--script", "webapp"]
        result = run([*argv, "--python", tools_version(tools), *more], env, work)
        if result.returncode != 0:
            raise benchlib.failed("pack", result)
    return apps


def tools_version(tools: Tools) -> str:
    return benchlib.capture([tools.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])


def once(app: Path, env: dict[str, str], work: Path, cache: Path) -> float:
    result = run([str(app)], {**env, "XDG_CACHE_HOME": str(cache)}, work)
    if result.returncode != 2 or result.stderr.strip() != USAGE:
        raise benchlib.failed(app.name, result)
    return result.wall_s


def measure(
    apps: dict[str, Path], env: dict[str, str], work: Path, rounds: int, first_rounds: int
) -> dict[str, list[float]]:
    walls: dict[str, list[float]] = {f"{kind}-{when}": [] for kind in apps for when in ("first", "warm")}
    for i in range(first_rounds):
        for kind in benchlib.rotated(i, list(apps)):
            cache = work / f"first-{kind}-{i}"
            walls[f"{kind}-first"].append(once(apps[kind], env, work, cache))
            shutil.rmtree(cache, ignore_errors=True)
        benchlib.progress("first run", i, first_rounds, "")
    for kind, app in apps.items():
        once(app, env, work, work / f"warm-{kind}")  # installs; untimed
    for i in range(rounds):
        for kind in benchlib.rotated(i, list(apps)):
            walls[f"{kind}-warm"].append(once(apps[kind], env, work, work / f"warm-{kind}"))
        benchlib.progress("warm run", i, rounds, "")
    return walls


def report(apps: dict[str, Path], walls: dict[str, list[float]]) -> list[str]:
    rows = []
    for kind, app in apps.items():
        size = app.stat().st_size
        first, warm = walls[f"{kind}-first"], walls[f"{kind}-warm"]
        rows.append(
            [
                kind,
                f"{size / 1e6:.1f} MB",
                f"{ms(statistics.median(first))} ({ms(min(first))}-{ms(max(first))})",
                f"{ms(statistics.median(warm))} ({ms(min(warm))}-{ms(max(warm))})",
            ]
        )
    ratio = statistics.median(walls["carried-warm"]) / statistics.median(walls["plain-warm"])
    return [
        *benchlib.table_lines(["executable", "size", "first run ms (range)", "warm run ms (range)"], rows),
        "",
        f"- carried warm run: {ratio:.2f}x the plain executable's",
        f"- carried file: {apps['carried'].stat().st_size / apps['plain'].stat().st_size:.1f}x the plain one",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--first-rounds", type=int, default=5)
    parser.add_argument("--archive", type=Path, help="a python-build-standalone install_only archive")
    parser.add_argument("--python", default=benchlib.default_python(), help="the bundle's Python")
    parser.add_argument("--work-dir", type=Path, default=benchlib.BENCH_DIR / ".work" / "executable-python")
    parser.add_argument("--keep-work", action="store_true", help="leave the work dir in place")
    args = parser.parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    env = bench_env(work / "uv-cache")
    try:
        apps = setup(tools, work, env, args.archive)
        walls = measure(apps, env, work, args.rounds, args.first_rounds)
        print("\n".join(report(apps, walls)))
    except BenchError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
