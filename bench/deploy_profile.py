"""Deploy profile (issue 14): where a "one member's code changed" deploy of examples/webapp spends its time.

    python bench/deploy_profile.py [--rounds N] [--keep-work]

The scenario is deploy_bench's "one member's code changed": a copy of examples/webapp with the
``[tool.venvkeeper.hooks]`` table removed (uv runs no hooks), one deploy to warm uv's cache and the
member wheel cache (not timed), one untimed round, then ``--rounds`` rounds that each append a comment
to ``packages/webapp/src/webapp/__init__.py``, commit it and run ``venvkeeper deploy --keep 1 --json``.

Each deploy runs in a child process under a driver that wraps venvkeeper's module functions (as
bundle_bench's TIMING_DRIVER does, plus ``Class.method`` targets) and sums each one's time over its
calls; the table gives the medians over the rounds. Steps marked "parallel" run in a thread beside
another step, so the rows do not add up to the total. Nothing fails: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import benchlib
from benchlib import BenchError, Tools, bench_env
from deploy_bench import CHANGED_FILE, Bench, git

PROG = "deploy_profile"

# The deploy run in-process with some of its functions timed: argv is the JSON file the times go to,
# the targets ("module:name" or "module:Class.name", comma-separated), then deploy's own arguments.
DRIVER = r"""
import functools, importlib, json, sys, time
out, spec, *argv = sys.argv[1:]
times = {}
def wrap(target):
    module_name, dotted = target.split(":")
    owner = importlib.import_module(module_name)
    *path, name = dotted.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    @functools.wraps(original)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times[target] = times.get(target, 0.0) + time.perf_counter() - started
    setattr(owner, name, timed)
started = time.perf_counter()
from venvkeeper.cli import main as cli
for target in spec.split(","):
    wrap(target)
imported = time.perf_counter()
code = cli.main(argv)
times["total"] = time.perf_counter() - imported
times["imports"] = imported - started
with open(out, "w") as fh:
    json.dump(times, fh)
sys.exit(code)
"""

# Each row: target, then "depth|step|what", with depth the row's nesting in the table and "*" before
# the step when it runs in a thread beside another step.
STEPS: list[tuple[str, str]] = [
    ("imports", "0|imports|venvkeeper.cli and the wrapped modules imported"),
    ("total", "0|cli.main|the whole command in-process"),
    ("venvkeeper.deploy.converge:_gather", "1|facts|workspace, lock, member hashes, what stands at --env"),
    ("venvkeeper.deploy.converge:_converge", "1|converge|stage, ask uv, decide, build the generation"),
    ("venvkeeper.project.staging:populate", "2|staging copy|the git-tracked files copied outside the tree"),
    ("venvkeeper.generations.engine:find_python", "2|uv python find|skipped when the record answers"),
    ("venvkeeper.deploy.converge:stale_member", "2|stale member check|the lock's member requirements read"),
    ("venvkeeper.generations.engine:check_lock", "2|*uv lock --check|skipped when the record answers"),
    ("venvkeeper.generations.engine:export_text", "2|uv export|skipped when the record answers"),
    ("venvkeeper.deploy.converge:build_and_switch", "2|generation|build, record, switch, prune"),
    ("venvkeeper.deploy.populate:populate", "3|populate|everything inside the new directory"),
    ("venvkeeper.deploy.populate:install_locked", "4|install|from nothing: the sync beside the member build"),
    ("venvkeeper.generations.delta:start", "4|*clone|the live generation linked (beside the member build)"),
    (
        "venvkeeper.generations.engine:sync_dependencies",
        "5|*uv sync|the lock's packages (a clone: only if it changed)",
    ),
    (
        "venvkeeper.generations.engine:export_requirements",
        "5|*uv export|what the lock installs now (lock changed)",
    ),
    ("venvkeeper.generations.dropped:extraneous", "5|*dropped|what the lock no longer installs"),
    ("venvkeeper.generations.wheelcache:member_wheels", "4|*member wheels|cache lookups and builds"),
    ("venvkeeper.generations.engine:build_wheel", "5|*uv build|the changed member's wheel"),
    ("venvkeeper.generations.engine:install_wheels", "4|uv pip install|the changed members' wheels"),
    ("venvkeeper.generations.delta:drop_stale_bytecode", "4|stale bytecode|dropped beside replaced sources"),
    ("venvkeeper.generations.delta:delta_sources", "4|delta sources|the .py files to compile"),
    ("venvkeeper.deploy.populate:inspect_wheel", "4|inspect wheels|modules and scripts read"),
    ("venvkeeper.deploy.populate:finish", "4|finish|smoke check beside the seal, manifest written"),
    ("venvkeeper.generations.smoke:smoke_check", "5|*smoke check|compile the delta, import the members"),
    ("venvkeeper.generations.manifest:seal", "5|*seal|files hashed (a clone's linked ones reused)"),
    ("venvkeeper.generations.manifest:seal_bytecode", "5|seal bytecode|the compiled bytecode sealed"),
    ("venvkeeper.generations.layout:Layout.switch_to", "3|switch|the symlink replaced"),
    ("venvkeeper.generations.identity:prune", "3|prune|old generations removed (--keep 1)"),
    ("venvkeeper.generations.wheelcache:prune", "1|wheel prune|unused member wheels"),
    ("venvkeeper.deploy.converge:_stamp", "1|stamp|the no-op stamp"),
]
FUNCTIONS = [target for target, _ in STEPS if ":" in target]


def profile_round(
    bench: Bench, tools: Tools, env_path: Path, i: int, locks: Sequence[bytes] = ()
) -> tuple[float, dict[str, float]]:
    """Change the member (or flip the lock), commit, deploy under the driver; the process wall time and
    the step times."""
    marker = f"profile round {i} {uuid.uuid4().hex}"
    if locks:  # the bump scenario: the lock flips between two versions of one package
        (bench.project / "uv.lock").write_bytes(locks[i % 2])
    else:
        changed = bench.project / CHANGED_FILE
        changed.write_text(changed.read_text() + f"# {marker}\n")
    git(bench.project, "commit", "-q", "--allow-empty", "-am", marker)
    out = bench.work / f"times-{i}.json"
    argv = [
        tools.vk_python,
        "-c",
        DRIVER,
        str(out),
        ",".join(FUNCTIONS),
        *benchlib.deploy_argv(tools, bench.project, env_path)[1:],
        "--keep",
        "1",
        "--json",
    ]
    result = benchlib.run(argv, bench_env(bench.cache), bench.work)
    payload = benchlib.report_json(result)
    if result.returncode != 0 or not payload.get("changed"):
        raise benchlib.failed("the profiled deploy", result)
    times: dict[str, float] = json.loads(out.read_text())
    return result.wall_s, times


def table(walls: Sequence[float], rounds: Sequence[dict[str, float]]) -> str:
    headers = ["step", "median ms", "min ms", "max ms", "calls seen", "what"]
    rows = [
        [
            "process wall",
            benchlib.ms(statistics.median(walls)),
            benchlib.ms(min(walls)),
            benchlib.ms(max(walls)),
            "",
            "python start to exit",
        ]
    ]
    for target, row in STEPS:
        depth, step, what = row.split("|")
        seen = [r[target] for r in rounds if target in r]
        parallel = step.startswith("*")
        label = "  " * int(depth) + step.lstrip("*") + (" (parallel)" if parallel else "")
        if not seen:
            rows.append([label, "-", "-", "-", "0", what])
            continue
        cells = [benchlib.ms(statistics.median(seen)), benchlib.ms(min(seen)), benchlib.ms(max(seen))]
        rows.append([label, *cells, f"{len(seen)}/{len(rounds)}", what])
    return benchlib.text_table(headers, rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--bump",
        metavar="NAME==VERSION",
        help="profile a locked package bumped (the lock flips to this version and back), not a member change",
    )
    benchlib.add_common_options(parser, "deploy_profile", python_help="interpreter given to venvkeeper")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = tools.machine()
    bench = Bench(tools, work)
    env_path = bench.envs / "vk-profile"

    def body() -> tuple[list[float], list[dict[str, float]]]:
        bench.prepare_project()
        locks: list[bytes] = []
        if args.bump:
            locks.append((bench.project / "uv.lock").read_bytes())
            run = benchlib.run(
                [tools.uv, "lock", "--quiet", f"--upgrade-package={args.bump}"],
                bench_env(bench.cache),
                bench.project,
            )
            if run.returncode != 0:
                raise benchlib.failure("uv lock --upgrade-package", run)
            locks.insert(0, (bench.project / "uv.lock").read_bytes())
            (bench.project / "uv.lock").write_bytes(locks[1])
        benchlib.deploy(
            tools, bench.project, env_path, bench_env(bench.cache), cwd=work, fail=benchlib.failure
        )
        walls: list[float] = []
        rounds: list[dict[str, float]] = []
        for i in range(args.rounds + 1):  # round 0 warms the member-change path and is not counted
            wall, times = profile_round(bench, tools, env_path, i, locks)
            if i:
                walls.append(wall)
                rounds.append(times)
                benchlib.progress("profile", i - 1, args.rounds, f"wall={wall * 1000:.0f}ms")
        return walls, rounds

    try:
        walls, rounds = benchlib.measure(body, tools, machine, work, keep_work=args.keep_work)
    except BenchError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    print(f"{machine['venvkeeper']} ({machine['source']}); {machine['uv']}; {machine['load']}")
    print(table(walls, rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
