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
import json
import os
import shutil
import stat
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
from benchlib import EXAMPLE, BenchError, Run, Tools, bench_env, ms, run

PROG = "doctor_bench"
SECTION = "## doctor (issue 4)"

TARGET_MS = 150  # the whole doctor command, start-up included, for about 1,000 files


# --------------------------------------------------------------------------- running and timing


def failed(what: str, result: Run) -> BenchError:
    """The error for a failed command: its argv shell-quoted, the last 4000 characters of its output."""
    return benchlib.failure(what, result, quote=True, tail=4000)


@dataclass
class Command(benchlib.Timed):
    """One timed command and its runs. ``kind``: doctor, heal, anchor (the issue's) or info (extra).

    ``prepare`` runs before every run of the command, untimed (a fresh copy to heal).
    """

    key: str
    label: str  # as shown in the report, with $E/$M/$C/$PY placeholders
    argv: list[str]
    kind: str
    target: str = ""
    prepare: Callable[[], None] | None = None
    wall: list[float] = field(default_factory=list)
    internal: list[float] = field(default_factory=list)  # venvkeeper's JSON duration_s
    exits: list[int] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)  # the last JSON output
    payloads: list[dict[str, Any]] = field(default_factory=list)  # every timed run's JSON


def report_json(result: Run) -> dict[str, Any]:
    try:
        payload = json.loads(result.stdout)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def execute(cmd: Command, env: Mapping[str, str], cwd: Path, *, timed: bool) -> Run:
    """Run ``cmd`` once (after its ``prepare``); check its outcome; record its time when ``timed``.

    doctor and heal may exit 1 (findings left: still a complete run, noted in the report); anything
    else they or an anchor exit with is a failure, and so is a ``--json`` run without a report.
    """
    if cmd.prepare is not None:
        cmd.prepare()
    result = run(cmd.argv, env, cwd)
    ours = cmd.kind in ("doctor", "heal")
    ok = result.returncode in (0, 1) if ours else result.returncode == 0
    payload = report_json(result) if "--json" in cmd.argv else {}
    if "--json" in cmd.argv and "duration_s" not in payload:
        ok = False
    if not ok:
        raise failed(cmd.label, result)
    if timed:
        cmd.wall.append(result.wall_s)
        cmd.exits.append(result.returncode)
        if payload:
            cmd.internal.append(float(payload["duration_s"]))
            cmd.payloads.append(payload)
    if payload:
        cmd.payload = payload
    return result


def time_rounds(commands: Sequence[Command], rounds: int, env: Mapping[str, str], cwd: Path) -> None:
    """One untimed run of each command (warms the page cache), then ``rounds`` interleaved rounds."""
    for cmd in commands:
        execute(cmd, env, cwd, timed=False)
    for i in range(rounds):
        for cmd in benchlib.rotated(i, commands):
            execute(cmd, env, cwd, timed=True)
        benchlib.progress(
            "doctor", i, rounds, "  ".join(f"{c.key}={c.wall[-1] * 1000:.0f}ms" for c in commands)
        )


def deploy(tools: Tools, project: Path, env_path: Path, env: Mapping[str, str]) -> Run:
    argv = [tools.venvkeeper, "deploy", str(project), "--env", str(env_path), "--python", tools.python]
    result = run([*argv, "--json"], env, env_path.parent)
    if result.returncode != 0 or not report_json(result).get("ok"):
        raise failed("venvkeeper deploy", result)
    return result


def entries(root: Path) -> tuple[int, int, int]:
    """(regular files, symlinks, bytes of the regular files) under ``root``, ``__pycache__`` skipped."""
    files = links = total = 0
    for here, dirs, names in os.walk(root):  # symlinks to directories are listed, never entered
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names + [d for d in dirs if os.path.islink(os.path.join(here, d))]:
            st = os.lstat(os.path.join(here, name))
            if stat.S_ISLNK(st.st_mode):
                links += 1
            elif stat.S_ISREG(st.st_mode):
                files += 1
                total += st.st_size
    return files, links, total


def fresh_copy(source: Path, dest: Path) -> Callable[[], None]:
    """A ``prepare`` step: ``dest`` replaced by a copy of ``source`` (symlinks kept as links)."""

    def prepare() -> None:
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, dest, symlinks=True)

    return prepare


# --------------------------------------------------------------------------- the measurement


@dataclass
class Part:
    title: str
    rounds: int
    commands: list[Command] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def get(self, key: str) -> Command:
        return next(c for c in self.commands if c.key == key)


def measure_doctor(tools: Tools, work: Path, rounds: int, part: Part) -> None:
    cache, env_path = work / "uv-cache", work / "env" / ".venv"
    env_path.parent.mkdir(parents=True)
    env = bench_env(cache)
    print("deploying examples/webapp (not timed; its hooks run)", file=sys.stderr, flush=True)
    result = deploy(tools, EXAMPLE, env_path, env)
    part.notes.append(f"the deploy of examples/webapp took {result.wall_s:.1f} s (not part of the timings)")
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
        Command("pass", "$PY -c pass", [py, "-c", "pass"], "anchor"),
        Command("env-pass", "$E/bin/python -c pass", [f"{e}/bin/python", "-c", "pass"], "anchor"),
        Command(
            "check",
            "uv pip check --python $E/bin/python",
            [tools.uv, "pip", "check", "--python", f"{e}/bin/python"],
            "anchor",
        ),
        Command(
            "upgrade",
            "$BASE -m venv --upgrade --without-pip $C",
            [tools.python, "-m", "venv", "--upgrade", "--without-pip", str(upgraded)],
            "info",
        ),
    ]
    print(f"{rounds} rounds of {len(part.commands)} commands", file=sys.stderr, flush=True)
    time_rounds(part.commands, rounds, env, work)
    part.facts["generation"] = generation
    part.facts["entries"] = entries(generation)


# --------------------------------------------------------------------------- report


def ratio_cell(a: Command, b: Command) -> str:
    return f"{a.median / b.median:.2f}x ({benchlib.paired_ratio(a, b):.2f}x)"


ANCHORS = ["pass", "env-pass", "check", "upgrade"]
HEADERS = [
    "command",
    "median ms",
    "range ms",
    "of which in-process ms",
    "÷ $PY -c pass",
    "÷ $E/bin/python -c pass",
    "÷ uv pip check",
    "÷ venv --upgrade",
    "target",
    "met",
]


def rows(part: Part) -> list[list[str]]:
    out = []
    anchors = [part.get(k) for k in ANCHORS]
    for cmd in part.commands:
        within = ""
        if cmd.target.startswith("<="):
            within = "yes" if cmd.median * 1000 <= TARGET_MS else "no"
        ratios = [ratio_cell(cmd, a) if cmd.kind in ("doctor", "heal") else "" for a in anchors]
        out.append(
            [
                f"`{cmd.label}`",
                ms(cmd.median),
                f"{ms(min(cmd.wall))}-{ms(max(cmd.wall))}",
                ms(cmd.internal_median),
                *ratios,
                cmd.target or ("anchor" if cmd.kind == "anchor" else "(informational)"),
                within,
            ]
        )
    return out


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
        if cmd.kind not in ("doctor", "heal"):
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
    out = [
        *benchlib.section_head(SECTION, command, machine),
        f"- Python {machine['python']} (`$PY` = `{machine['vk_python']}`, venvkeeper's interpreter; "
        f"the deploy got `--python {machine['python_path']}`, `$BASE` below)",
        f"- {machine['uv']} (`{machine['uv_path']}`; venvkeeper runs `{machine['venvkeeper_uv']}`)",
        f"- {machine['venvkeeper']} ({machine['source']})",
        "",
        "Wall-clock times in milliseconds (whole process, start to exit), warm page cache. A ratio "
        "cell is the command's median over the anchor's median, and in brackets the median of the "
        'round-by-round ratios. "of which in-process" is the `duration_s` venvkeeper reports in its JSON.',
        "",
    ]
    if part.error:
        out += ["**Failed.**", "", "```", part.error, "```", ""]
    else:
        out += [*benchlib.table_lines(HEADERS, rows(part)), "", verdict(part), ""]
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
        "Before the rounds every command runs once untimed (the page cache is warm). Each round runs "
        "every command once, one after the other; the first command rotates from round to round. "
        "Run-to-run noise on this machine is large; compare ratios from the same run.",
        "",
    ]
    notes = observations(part)
    if notes:
        out += ["### Observations", "", *(f"- {n}" for n in notes), ""]
    if not part.error:
        out += ["### All rounds (ms)", ""]
        out += [f"- `{cmd.label}`: {cmd.all_rounds()}" for cmd in part.commands]
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="rounds (default 21)")
    benchlib.add_common_options(parser, "doctor", python_help="interpreter given to deploy")
    return parser.parse_args(argv)


def run_part(tools: Tools, work: Path, rounds: int) -> Part:
    """The measurement; a failure is reported with its error instead of the figures."""
    part = Part("examples/webapp, the whole command", rounds)
    try:
        measure_doctor(tools, work, rounds, part)
    except BenchError as exc:
        part.error = str(exc)
        print(f"FAILED: {exc}", file=sys.stderr)
    return part


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = benchlib.checked_work_dir(args.work_dir, PROG)
    benchlib.reset_dir(work)
    venvkeeper = benchlib.find_tool("venvkeeper", PROG)
    vk_python = benchlib.shebang_interpreter(venvkeeper) or sys.executable
    tools = Tools(venvkeeper, benchlib.find_tool("uv", PROG), args.python, vk_python)
    machine = tools.machine()
    benchlib.announce(tools, machine, work)
    part = benchlib.measure(
        lambda: run_part(tools, work, args.rounds), machine, work, keep_work=args.keep_work
    )
    print(part.title)
    if part.error:
        print(f"FAILED:\n{part.error}\n")
    else:
        print(benchlib.text_table(HEADERS, rows(part)), "", verdict(part), "", sep="\n")
    for note in observations(part):
        print(f"note: {note}")
    if args.write:
        command = benchlib.command_line("doctor_bench.py", argv)
        benchlib.write_section(args.write, SECTION, markdown(part, machine, command))
        print(f"\nwrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
