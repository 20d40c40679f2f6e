"""Doctor benchmark (issue 4): ``venvkeeper doctor``'s wall time, and ``heal``'s on two easy cases.

    python bench/doctor_bench.py [--rounds N] [--write BENCHMARKS.md]

examples/webapp is deployed to a temporary ``--env`` (about 900 files, as in the verify benchmark) and
every command is timed as wall-clock time of the whole command (process start to exit), with a warm
page cache (every command runs once, untimed, before the rounds):

- ``doctor --env $E`` and ``doctor --env $E --json`` on the healthy environment. Target: the whole
  command within 150 ms for an environment of about 1,000 files.
- ``doctor --env $M``: the same environment copied to another directory (every shebang and
  activate script names the old place), so doctor has findings to report (informational).
- ``heal --env $E`` on the healthy environment: the no-op (informational).
- ``heal --env $M --json`` of a fresh copy each run (the copy is made before the run, untimed):
  shebangs and activate scripts rewritten (informational).
- anchors in the same rounds: ``$PY -c pass`` with venvkeeper's own interpreter (the floor of any
  Python command line), ``$E/bin/python -c pass`` (doctor runs the environment's interpreter once),
  ``uv pip check --python $E/bin/python`` (uv's own look at an environment) and, informational,
  ``python -m venv --upgrade --without-pip`` on a copy (the standard library's repair of a venv's
  links and scripts, with the interpreter the deploy used).

The commands run interleaved round by round (the first one rotates every round) so that the
machine's noise falls on all of them alike; the report is the median of the rounds and the ratios
of the medians. Nothing fails on a target: the script measures and reports.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import benchlib
from benchlib import Command, Part, Tools, ms

PROG = "doctor_bench"
SECTION = "## doctor (issue 4)"

TARGET_MS = 150  # the whole doctor command, start-up included, for about 1,000 files
OURS = ("doctor", "heal")  # the kinds of venvkeeper's commands: they may exit 1, and get ratio cells


# --------------------------------------------------------------------------- the measurement


def fresh_copy(source: Path, dest: Path) -> Callable[[], None]:
    """A ``prepare`` step: ``dest`` replaced by a copy of ``source`` (symlinks kept as links)."""

    def prepare() -> None:
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, dest, symlinks=True)

    return prepare


def measure_doctor(tools: Tools, work: Path, rounds: int, part: Part) -> None:
    env_path, env = benchlib.deploy_example(tools, work, part)
    generation = env_path.resolve()
    moved, healed, upgraded = work / "moved" / ".venv", work / "healed" / ".venv", work / "upgraded" / ".venv"
    fresh_copy(generation, moved)()
    fresh_copy(generation, upgraded)()
    vk, e, py = tools.venvkeeper, str(env_path), tools.vk_python
    target = f"<= {TARGET_MS} ms"
    part.commands = [
        Command("doctor", "venvkeeper doctor --env $E", [vk, "doctor", "--env", e], "doctor", target),
        Command(
            "json",
            "venvkeeper doctor --env $E --json",
            [vk, "doctor", "--env", e, "--json"],
            "doctor",
            target,
        ),
        Command(
            "moved",
            "venvkeeper doctor --env $M --json (moved copy, findings)",
            [vk, "doctor", "--env", str(moved), "--json"],
            "doctor",
        ),
        Command(
            "heal", "venvkeeper heal --env $E --json (no-op)", [vk, "heal", "--env", e, "--json"], "heal"
        ),
        Command(
            "heal-moved",
            "venvkeeper heal --env $H --json (fresh moved copy)",
            [vk, "heal", "--env", str(healed), "--json"],
            "heal",
            prepare=fresh_copy(generation, healed),
        ),
        benchlib.pass_anchor(py),
        Command("env-pass", "$E/bin/python -c pass", [f"{e}/bin/python", "-c", "pass"], "anchor"),
        benchlib.uv_pip_anchor(tools, env_path, "check"),
        Command(
            "upgrade",
            "$BASE -m venv --upgrade --without-pip $C",
            [tools.python, "-m", "venv", "--upgrade", "--without-pip", str(upgraded)],
            "info",
        ),
    ]
    print(f"{rounds} rounds of {len(part.commands)} commands", file=sys.stderr, flush=True)
    benchlib.time_rounds("doctor", part.commands, rounds, env, work, ours=OURS)
    part.facts["generation"] = generation
    part.facts["entries"] = benchlib.entries(generation)


# --------------------------------------------------------------------------- report


ANCHORS = ["pass", "env-pass", "check", "upgrade"]
HEADERS = benchlib.command_headers(
    "÷ $PY -c pass", "÷ $E/bin/python -c pass", "÷ uv pip check", "÷ venv --upgrade"
)


def rows(part: Part) -> list[list[str]]:
    return benchlib.anchored_rows(part.commands, [part.get(k) for k in ANCHORS], OURS, TARGET_MS)


def verdict(part: Part) -> str:
    d, j = part.get("doctor"), part.get("json")
    files, links, _ = part.facts["entries"]
    met = "met" if max(d.median, j.median) * 1000 <= TARGET_MS else "not met"
    return (
        f"**Target, the whole `doctor --env` within {TARGET_MS} ms for about 1,000 files: {met}** "
        f"(median {ms(d.median)} ms over {len(d.wall)} runs, `--json` {ms(j.median)} ms; the environment "
        f"has {files} regular files and {links} symlinks outside `__pycache__`)."
    )


def summary(payload: Mapping[str, Any], key: str, field_name: str) -> str:
    """``code`` (or ``action``) counts of a report's list ``key``, e.g. ``stale-shebang x12``."""
    counts = Counter(str(item.get(field_name)) for item in payload.get(key) or [])
    return ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) or "none"


def observations(part: Part) -> list[str]:
    if part.error:
        return []
    out = list(part.notes)
    for cmd in part.commands:
        if cmd.kind not in OURS:
            continue
        left = sum(1 for x in cmd.exits if x == 1)
        if left and cmd.key != "moved":
            out.append(
                f"`{cmd.label}` exited 1 (something found or left broken) in {left} of {len(cmd.exits)} runs"
            )
    healthy = part.get("json").payload
    if healthy.get("findings"):
        out.append(
            f"doctor's findings on the freshly deployed environment: {summary(healthy, 'findings', 'code')}"
        )
    else:
        out.append(
            f"doctor on the deployed environment: kind `{healthy.get('kind')}`, no findings "
            f"(interpreter {(healthy.get('interpreter') or {}).get('version')})"
        )
    moved = part.get("moved")
    out.append(
        f"doctor on the moved copy ($M, exit {moved.exits[-1]}): {summary(moved.payload, 'findings', 'code')}"
    )
    noop = part.get("heal")
    changed = sum(1 for p in noop.payloads if p.get("changed"))
    out.append(
        f"heal on the healthy environment changed something in {changed} of {len(noop.payloads)} runs "
        f"(actions of the last: {summary(noop.payload, 'actions', 'action')})"
    )
    repair = part.get("heal-moved")
    repaired = sum(1 for x in repair.exits if x == 0)
    out.append(
        f"heal of a moved copy ($H) exited 0 in {repaired} of {len(repair.exits)} runs; the last one's "
        f"actions: {summary(repair.payload, 'actions', 'action')}; outcomes: "
        f"{summary(repair.payload, 'outcomes', 'outcome')}"
    )
    d, j, p, e = part.get("doctor"), part.get("json"), part.get("pass"), part.get("env-pass")
    inproc = j.internal_median or 0.0
    out.append(
        f"where `doctor --env --json`'s {ms(j.median)} ms go (medians): interpreter start-up "
        f"{ms(p.median)} ms (`$PY -c pass`), the in-process run {ms(inproc)} ms (`duration_s`; it "
        f"includes running `$E/bin/python`, whose own start-up is {ms(e.median)} ms), the remaining "
        f"{ms(j.median - p.median - inproc)} ms imports, output, interpreter exit and noise. "
        f"Text output (`doctor --env`) takes {ms(d.median)} ms."
    )
    outside = [(c, c.median - (c.internal_median or 0.0)) for c in (j, noop, repair)]
    out.append(
        "outside the in-process run (start-up, imports, output, exit; wall median less `duration_s` "
        "median): " + ", ".join(f"`{c.label}` {ms(x)} ms" for c, x in outside)
    )
    return out


def markdown(part: Part, machine: Mapping[str, str], command: str) -> str:
    python_note = (
        f"`$PY` = `{machine['vk_python']}`, venvkeeper's interpreter; "
        f"the deploy got `--python {machine['python_path']}`, `$BASE` below"
    )
    out = [
        *benchlib.section_head(SECTION, command, machine, python_note),
        "",
        benchlib.ratio_legend("the command's", "venvkeeper"),
        "",
    ]
    if part.error:
        out += benchlib.failed_block("Failed.", part.error)
    else:
        out += benchlib.table_block(HEADERS, rows(part), verdict(part))
    out += [
        "### Commands",
        "",
        f"{part.rounds} rounds. `$E` is the `--env` path (a symlink) of `venvkeeper deploy examples/webapp "
        "--env $E --python $BASE` (its post-deploy hooks run) into a directory under `bench/.work/doctor/`, "
        "removed afterwards. `$M` is a copy of `$E`'s generation directory at another path, made once and "
        "never healed (its console scripts' shebangs and activate scripts name the generation). `$H` is "
        "such a copy made afresh before every run of heal (the copy is not timed). `$C` is another copy "
        "that `venv --upgrade` rewrites every run. Every command runs with a bench-owned `UV_CACHE_DIR` "
        "and `UV_PYTHON_DOWNLOADS=never`.",
        "",
        benchlib.ROUNDS_NOTE,
        "",
        *benchlib.observation_lines(observations(part)),
    ]
    if not part.error:
        out += benchlib.all_rounds_lines((f"`{cmd.label}`", cmd) for cmd in part.commands)
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="rounds (default 21)")
    benchlib.add_common_options(parser, "doctor", python_help="interpreter given to deploy")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = tools.machine()
    part = Part("doctor", "examples/webapp, the whole command", args.rounds)
    benchlib.measure(
        lambda: benchlib.run_part(part, lambda p: measure_doctor(tools, work, args.rounds, p)),
        tools,
        machine,
        work,
        keep_work=args.keep_work,
    )
    benchlib.print_part(part, HEADERS, rows, verdict)
    benchlib.conclude(
        observations(part),
        args.write,
        "doctor_bench.py",
        argv,
        SECTION,
        lambda command: markdown(part, machine, command),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
