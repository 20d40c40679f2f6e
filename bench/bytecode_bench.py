"""Sealed bytecode benchmark (issue 16): what compiling and sealing every module costs, in the same run.

    python bench/bytecode_bench.py [--before REV] [--rounds N]

Two copies of venvkeeper's source, interleaved round by round with the same interpreter, dependencies,
uv and uv cache (as ``startup_bench.py`` does):

- **before**: ``src/`` of ``--before`` (default: main before sealed bytecode), exported with ``git
  archive``; its deploy compiles only the changed members' modules and what the smoke check imports;
- **after**: ``src/`` of this working tree: every module of site-packages, checked-hash (PEP 552).

The project is a copy of examples/webapp with its hooks removed, committed to a git repository of its
own (as ``deploy_bench.py`` makes it). Each copy first deploys it (not timed) to an ``--env`` of its own;
then each round times, for each copy:

- **from nothing**: a deploy to a new ``--env`` (warm uv cache: what compiling everything adds, without
  the network's noise);
- **member changed**: one member's ``__init__.py`` edited and committed, then the deploy (``--keep 1``:
  a clone of the live generation plus the member) into the copy's ``--env``;
- **verify**: ``verify --env`` of that environment (now hashing ``__pycache__`` too);

and, as anchors for the first, ``uv sync`` into a new environment with and without
``--compile-bytecode`` (uv compiles all of site-packages then, as timestamp ``.pyc``).

It then reports the bytecode each copy's live generation holds (files and bytes under ``__pycache__``)
and the sealed bytecode in its manifest. Nothing fails on a target: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import benchlib
from benchlib import REPO, Tools, ms
from deploy_bench import Bench, git
from startup_bench import copy_argv, export_source

PROG = "bytecode_bench"
BEFORE = "cdc8f42"  # main before sealed bytecode
CHANGED_FILE = "packages/webapp/src/webapp/__init__.py"
STEPS = ("from nothing", "member changed", "verify")
# The anchors for "from nothing": uv into a new environment (warm cache), and with uv's own compile of
# all of site-packages (timestamp .pyc): what compiling every module costs without venvkeeper.
UV_STEPS = ("uv sync, new env", "uv sync --compile-bytecode, new env")


def timed(argv: Sequence[str], env: Mapping[str, str], cwd: Path, what: str) -> tuple[float, float | None]:
    """(wall seconds, venvkeeper's own duration_s when it printed JSON); exits on a failure."""
    result = benchlib.run(argv, env, cwd)
    if result.returncode != 0:
        raise benchlib.failed(what, result)
    duration = benchlib.report_json(result).get("duration_s")
    return result.wall_s, float(duration) if isinstance(duration, (int, float)) else None


def bytecode_of(env_path: Path) -> tuple[int, int, int, int]:
    """(.pyc files, their bytes, sealed .pyc, their bytes) of the live generation behind ``env_path``."""
    live = env_path.resolve()
    files = size = 0
    for here, _dirs, names in os.walk(live):
        if os.path.basename(here) == "__pycache__":
            for name in names:
                files += 1
                size += os.lstat(os.path.join(here, name)).st_size
    number = int(live.name)
    manifest = live.parent / f"{number:04d}.manifest.json"
    sealed = json.loads(manifest.read_text()).get("bytecode", {})
    return files, size, len(sealed), sum(int(row[0]) for row in sealed.values())


def measure(args: argparse.Namespace, work: Path, tools: Tools) -> dict[str, object]:
    bench = Bench(tools, work)
    bench.prepare_project()
    env = benchlib.bench_env(work / "uv-cache")
    copies = {"before": export_source(args.before, work / "before-tree"), "after": REPO / "src"}
    envs = {name: work / name / ".venv" for name in copies}
    base = ["--python", tools.python, "--json"]
    for name, src in copies.items():
        envs[name].parent.mkdir(parents=True)
        argv = copy_argv(tools, src, ["deploy", str(bench.project), "--env", str(envs[name]), *base])
        wall, _ = timed(argv, env, work, f"{name}: first deploy")
        print(f"{name}: first deploy {wall:.1f} s (not timed)", file=sys.stderr, flush=True)
    times: dict[tuple[str, str], list[float]] = {(s, n): [] for s in STEPS for n in copies}
    times.update({(s, "uv"): [] for s in UV_STEPS})
    internal: dict[tuple[str, str], list[float]] = {(s, n): [] for s in STEPS for n in copies}
    for i in range(args.rounds):
        init = bench.project / CHANGED_FILE
        init.write_text(init.read_text() + f"# round {i}\n")
        git(bench.project, "commit", "-qam", f"round {i}")
        for name in benchlib.rotated(i, list(copies)):
            src = copies[name]
            fresh = work / "fresh" / f"{name}-{i:02d}" / ".venv"
            fresh.parent.mkdir(parents=True)
            commands = {
                "from nothing": ["deploy", str(bench.project), "--env", str(fresh), *base],
                "member changed": [
                    "deploy",
                    str(bench.project),
                    "--env",
                    str(envs[name]),
                    "--keep",
                    "1",
                    *base,
                ],
                "verify": ["verify", "--env", str(envs[name]), "--json"],
            }
            for step, argv in commands.items():
                wall, duration = timed(copy_argv(tools, src, argv), env, work, f"{name}: {step}")
                times[step, name].append(wall)
                if duration is not None:
                    internal[step, name].append(duration)
        for extra in ((), ("--compile-bytecode",)):
            fresh = work / "fresh" / f"uv{len(extra)}-{i:02d}" / ".venv"
            times[UV_STEPS[len(extra)], "uv"].append(bench.uv_sync(fresh, env, *extra).wall_s)
        print(f"round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return {"times": times, "internal": internal, "bytes": {n: bytecode_of(envs[n]) for n in copies}}


def report(found: dict[str, object], rounds: int, before: str) -> str:
    times = found["times"]
    internal = found["internal"]
    sizes = found["bytes"]
    assert isinstance(times, dict) and isinstance(internal, dict) and isinstance(sizes, dict)
    rows = []
    for step in STEPS:
        b, a = statistics.median(times[step, "before"]), statistics.median(times[step, "after"])
        ib, ia = internal[step, "before"], internal[step, "after"]
        inner = f"{ms(statistics.median(ib))} / {ms(statistics.median(ia))}" if ib and ia else "-"
        rows.append([step, ms(b), ms(a), f"{a / b:.2f}x", f"{ms(a - b)}", inner])
    headers = ["command", "before ms", "after ms", "after/before", "added ms", "in-process ms before / after"]
    lines = [
        f"Wall-clock medians over {rounds} interleaved rounds; before = `{before}`, after = this tree.",
        "",
    ]
    lines += [benchlib.text_table(headers, rows), ""]
    uv_rows = [[step, ms(statistics.median(times[step, "uv"]))] for step in UV_STEPS]
    lines += [benchlib.text_table(["anchor (new environment, warm cache)", "ms"], uv_rows), ""]
    size_rows = [
        [name, str(files), f"{size / 1024:.0f}", str(sealed), f"{sealed_bytes / 1024:.0f}"]
        for name, (files, size, sealed, sealed_bytes) in sizes.items()
    ]
    lines.append(benchlib.text_table(["copy", ".pyc files", "KiB", "sealed .pyc", "sealed KiB"], size_rows))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--before", default=BEFORE, help=f"the git revision to compare with (default {BEFORE})"
    )
    benchlib.add_common_options(parser, PROG, python_help="the interpreter given to --python")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = tools.machine()
    found = benchlib.measure(
        lambda: measure(args, work, tools), tools, machine, work, keep_work=args.keep_work
    )
    print(f"{machine['cpu']}, {machine['nproc']} cores; Python {machine['python']}; {machine['load']}")
    print(report(found, args.rounds, args.before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
