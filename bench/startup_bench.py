"""Start-up benchmark (issue 13): the fast paths before and after a change of shape, in the same run.

    python bench/startup_bench.py [--before REV] [--rounds N] [--write BENCHMARKS.md]

Issue 13 moved venvkeeper's modules into packages and replaced function-level imports with one lazy-import
mechanism. Its condition: the no-op deploy, verify and doctor fast paths must not get slower. This script
times each of them with two copies of venvkeeper's source, interleaved round by round with the same
interpreter and dependencies:

- **before**: ``src/`` of ``--before`` (default: the last commit before the restructuring), exported with
  ``git archive`` into the work dir;
- **after**: ``src/`` of this working tree.

Both run as ``python -m venvkeeper`` with ``PYTHONPATH`` naming their ``src/`` (so the same interpreter,
site-packages and uv). Each copy deploys examples/webapp (its hooks run; not timed) to an ``--env`` of its
own, then the rounds time, for each copy:

- ``deploy examples/webapp --env E`` (unchanged: the no-op fast path, text output as under cron);
- ``verify --env E`` (text);
- ``doctor --env E`` (text);
- ``heal --env E`` (text; nothing to repair, but it reads the project to see whether a redeploy would
  change anything);

and ``$PY -c pass`` as the floor. The report gives medians, the ratio after/before of the medians and the
median of the per-round ratios. Nothing fails on a target: the script measures and reports.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import benchlib
from benchlib import Command, Part, Tools, ms

PROG = "startup_bench"
BEFORE = "75fb090"  # main before issue 13's restructuring (flat package, function-level imports)
STEPS = (
    ("deploy", "no-op deploy", ["deploy", "{project}", "--env", "{env}", "--python", "{python}"]),
    ("verify", "verify", ["verify", "--env", "{env}"]),
    ("doctor", "doctor", ["doctor", "--env", "{env}"]),
    ("heal", "heal with nothing to repair", ["heal", "--env", "{env}"]),
)


def export_source(rev: str, dest: Path) -> Path:
    """``src/`` of ``rev`` unpacked under ``dest``; the path to put on PYTHONPATH."""
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(benchlib.REPO), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def copy_argv(tools: Tools, src: Path, args: Sequence[str]) -> list[str]:
    return ["env", f"PYTHONPATH={src}", tools.vk_python, "-m", "venvkeeper", *args]


def prepare(tools: Tools, work: Path, name: str, src: Path, env: dict[str, str], part: Part) -> Path:
    """The copy's own --env with examples/webapp deployed by that copy (not timed)."""
    env_path = work / name / ".venv"
    env_path.parent.mkdir(parents=True)
    argv = copy_argv(
        tools, src, ["deploy", str(benchlib.EXAMPLE), "--env", str(env_path), "--python", tools.python]
    )
    result = benchlib.run(argv, env, env_path.parent)
    if result.returncode != 0:
        raise benchlib.failed(f"{name}: venvkeeper deploy", result)
    part.notes.append(f"{name}: the first deploy took {result.wall_s:.1f} s (not timed)")
    return env_path


def commands(tools: Tools, copies: dict[str, tuple[Path, Path]]) -> list[Command]:
    cmds = [benchlib.pass_anchor(tools.vk_python)]
    for key, label, template in STEPS:
        for name, (src, env_path) in copies.items():
            args = [a.format(project=benchlib.EXAMPLE, env=env_path, python=tools.python) for a in template]
            cmds.append(Command(f"{key}-{name}", f"{label} ({name})", copy_argv(tools, src, args), name))
    return cmds


def measure(args: argparse.Namespace, work: Path, tools: Tools, part: Part) -> None:
    env = benchlib.bench_env(work / "uv-cache")
    before_src = export_source(args.before, work / "before-tree")
    copies = {"before": before_src, "after": benchlib.REPO / "src"}
    prepared = {name: (src, prepare(tools, work, name, src, env, part)) for name, src in copies.items()}
    part.commands = commands(tools, prepared)
    benchlib.time_rounds(part.key, part.commands, part.rounds, env, work, ours={"before", "after"})


def rows(part: Part) -> list[list[str]]:
    out = []
    for key, label, _ in STEPS:
        before, after = part.get(f"{key}-before"), part.get(f"{key}-after")
        out.append(
            [
                label,
                ms(before.median),
                ms(after.median),
                f"{after.median / before.median:.2f}x",
                f"{benchlib.paired_ratio(after, before):.2f}x",
            ]
        )
    floor = part.get("pass")
    out.append(["`$PY -c pass` (floor)", ms(floor.median), ms(floor.median), "-", "-"])
    return out


HEADERS = ["fast path", "before ms", "after ms", "ratio after/before", "per-round ratio, median"]


SECTION = "## start-up before and after the restructuring (issue 13)"


def section(part: Part, machine: dict[str, str], command: str) -> str:
    python_note = (
        f"`$PY` = `{machine['vk_python']}` runs both copies; "
        f"the deploys got `--python {machine['python_path']}`"
    )
    lines = [*benchlib.section_head(SECTION, command, machine, python_note), ""]
    if part.error:
        lines += benchlib.failed_block("start-up", part.error)
    else:
        lines += [
            f"Wall-clock medians in milliseconds over {part.rounds} interleaved rounds; `before` is `src/` "
            f"of `{part.facts['before']}` (the flat package), `after` is this tree's `src/`. Both run "
            "`python -m venvkeeper` with the same interpreter and dependencies (`PYTHONPATH` selects the "
            "copy), each on an `--env` it deployed itself. A ratio above 1 means the restructured code is "
            "slower.",
            "",
            *benchlib.table_lines(HEADERS, rows(part)),
            "",
        ]
    lines += benchlib.observation_lines(part.notes)
    if not part.error:
        lines += [benchlib.ROUNDS_NOTE, ""]
        lines += benchlib.all_rounds_lines((f"`{c.label}`", c) for c in part.commands)
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="rounds (default 21)")
    parser.add_argument(
        "--before", default=BEFORE, help=f"the git revision to compare with (default {BEFORE})"
    )
    benchlib.add_common_options(parser, PROG, python_help="the interpreter given to --python")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = tools.machine()
    part = Part("start-up", "start-up", args.rounds)
    part.facts["before"] = args.before
    benchlib.measure(
        lambda: benchlib.run_part(part, lambda p: measure(args, work, tools, p)),
        tools,
        machine,
        work,
        keep_work=args.keep_work,
    )
    print(section(part, machine, benchlib.command_line("startup_bench.py", argv)))
    benchlib.conclude(
        [], args.write, "startup_bench.py", argv, SECTION, lambda command: section(part, machine, command)
    )
    return 1 if part.error else 0


if __name__ == "__main__":
    sys.exit(main())
