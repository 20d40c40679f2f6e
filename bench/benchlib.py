"""What the benchmark scripts share: finding the tools, describing the machine, running and timing
commands, deploying examples/webapp, the report's tables and paragraphs, and writing a script's
section of BENCHMARKS.md.

doctor_bench and verify_bench time a list of ``Command``s in interleaved rounds (``time_rounds``)
against anchor commands, one ``Part`` per environment; deploy_bench times its own scenarios and uses
the rest.

The scripts run as ``python bench/X.py``, so bench/ is on ``sys.path`` and ``import benchlib`` finds
this module; it is not part of the venvkeeper package.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import stat
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
EXAMPLE = REPO / "examples" / "webapp"

T = TypeVar("T")


# --------------------------------------------------------------------------- tools and machine


def find_tool(name: str, prog: str) -> str:
    """``name`` next to the running interpreter (its venv's bin/, not resolved), else on PATH.

    ``prog`` (the script's name) starts the message the script exits with when there is none.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{prog}: {name} not found next to {sys.executable} nor on PATH")
    return found


def default_python() -> str:
    """The base interpreter behind the running one (a venv's python is only a link to it)."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def capture(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return (proc.stdout or proc.stderr).strip()


def shebang_interpreter(script: str) -> str | None:
    """The interpreter a console script runs with (its ``#!`` line)."""
    first = Path(script).read_text(errors="replace").splitlines()[:1]
    if not first or not first[0].startswith("#!"):
        return None
    return first[0][2:].strip().split()[0]


def venvkeeper_uv(venvkeeper: str) -> str:
    """The uv binary venvkeeper itself will run (its interpreter is the script's shebang)."""
    interpreter = shebang_interpreter(venvkeeper)
    if interpreter is None:
        return "?"
    return capture([interpreter, "-c", "from venvkeeper.gateways.uv import find_uv; print(find_uv())"])


def source_fingerprint() -> str:
    """Which venvkeeper was measured: the digest of src/ and the repository's commit, if any."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "src").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    head = capture(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    commit = head if re.fullmatch(r"[0-9a-f]{4,40}", head) else "no commit yet"
    dirty = capture(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"])
    state = f"{commit}{', src/ has uncommitted changes' if dirty else ''}"
    return f"src/ sha256 {digest.hexdigest()[:12]}, git: {state}"


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


@dataclass
class Tools:
    venvkeeper: str
    uv: str
    python: str  # given to the tools (--python)
    # The interpreter venvkeeper runs with, for a script that reports it: "python" in machine() is
    # then its version (else the version of ``python``).
    vk_python: str = ""

    @property
    def reported_python(self) -> str:
        """The interpreter whose version machine() reports as "python"."""
        return self.vk_python or self.python

    def machine(self) -> dict[str, str]:
        """What every script reports about the machine and the tools; a script adds its own keys."""
        nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        version = "import platform; print(platform.python_version())"
        facts = {
            "nproc": str(nproc),
            "cpu": cpu_model(),
            "os": f"{platform.system()} {platform.release()}",
            "python": capture([self.reported_python, "-c", version]),
            "python_path": self.python,
            "uv": capture([self.uv, "--version"]),
            "uv_path": self.uv,
            "venvkeeper_uv": venvkeeper_uv(self.venvkeeper),
            "venvkeeper": capture([self.venvkeeper, "--version"]),
            "venvkeeper_path": self.venvkeeper,
            "source": source_fingerprint(),
        }
        if self.vk_python:
            facts["vk_python"] = self.vk_python
        return facts


def bench_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") and k != "VIRTUAL_ENV"}
    env["UV_CACHE_DIR"] = str(cache)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def add_common_options(parser: argparse.ArgumentParser, name: str, *, python_help: str) -> None:
    """--python, --write, --work-dir (default bench/.work/``name``) and --keep-work."""
    parser.add_argument("--python", default=default_python(), help=python_help)
    parser.add_argument("--write", type=Path, metavar="FILE", help=f"replace the {name} section of FILE")
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / ".work" / name)
    parser.add_argument("--keep-work", action="store_true", help="leave the work dir in place")


def checked_work_dir(work_dir: Path, prog: str) -> Path:
    """``work_dir`` resolved, after checking it is not inside examples/ (``prog`` exits if it is)."""
    work = work_dir.resolve()
    if EXAMPLE.resolve() in (work, *work.parents):
        sys.exit(f"{prog}: the work dir must not be inside examples/")
    return work


def reset_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def start(args: argparse.Namespace, prog: str, *, vk_python: bool = True) -> tuple[Path, Tools]:
    """The work dir (``args.work_dir`` checked and emptied) and the tools (``args.python`` given to
    them). With ``vk_python``, the interpreter venvkeeper runs with is recorded too (and reported)."""
    work = checked_work_dir(args.work_dir, prog)
    reset_dir(work)
    venvkeeper = find_tool("venvkeeper", prog)
    tools = Tools(venvkeeper, find_tool("uv", prog), args.python)
    if vk_python:
        tools.vk_python = shebang_interpreter(venvkeeper) or sys.executable
    return work, tools


def announce(tools: Tools, machine: Mapping[str, str], work: Path) -> None:
    """What is measured, on stderr, before the run."""
    print(
        f"venvkeeper: {tools.venvkeeper} ({machine['source']})\nuv: {tools.uv} ({machine['uv']}; "
        f"venvkeeper runs {machine['venvkeeper_uv']})\n"
        f"python: {tools.reported_python} ({machine['python']})\nwork: {work}",
        file=sys.stderr,
    )


def measure(
    body: Callable[[], T], tools: Tools, machine: dict[str, str], work: Path, *, keep_work: bool
) -> T:
    """What is measured announced (stderr), ``body()``, then ``work`` removed (unless ``keep_work``);
    notes the load and any src/ change in ``machine`` and prints the total time on stderr."""
    announce(tools, machine, work)
    started, load_before = time.monotonic(), load_average()
    try:
        result = body()
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    machine["load"] = f"load average (1, 5, 15 min) {load_before} before, {load_average()} after"
    if source_fingerprint() != machine["source"]:
        machine["source"] += "; WARNING: src/ changed during the run, so the rounds mix versions: rerun"
        print(f"WARNING: src/ changed during the run ({source_fingerprint()})", file=sys.stderr)
    print(f"\n(total {time.monotonic() - started:.0f}s)\n", file=sys.stderr)
    return result


# --------------------------------------------------------------------------- running and timing


class BenchError(Exception):
    """A command the benchmark runs failed; carries its full output."""


@dataclass
class Run:
    argv: list[str]
    wall_s: float
    returncode: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Run:
    started = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    wall = time.perf_counter() - started
    return Run(list(argv), wall, proc.returncode, proc.stdout, proc.stderr)


def failure(
    what: str, result: Run, env_note: str = "", *, quote: bool = False, tail: int | None = None
) -> BenchError:
    """The error for a failed command: its argv (shell-quoted if ``quote``) and its output (the last
    ``tail`` characters of each stream, if given). ``env_note`` follows the exit code."""
    argv = shlex.join(result.argv) if quote else " ".join(result.argv)
    stdout, stderr = result.stdout.rstrip(), result.stderr.rstrip()
    if tail is not None:
        stdout, stderr = stdout[-tail:], stderr[-tail:]
    return BenchError(
        f"{what} failed (exit {result.returncode}){env_note}\n$ {argv}\n"
        f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )


def failed(what: str, result: Run) -> BenchError:
    """The error for a failed command: its argv shell-quoted, the last 4000 characters of its output."""
    return failure(what, result, quote=True, tail=4000)


def report_json(result: Run) -> dict[str, Any]:
    """The JSON object a ``--json`` run printed; empty if it printed none."""
    try:
        payload = json.loads(result.stdout)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def deploy_argv(tools: Tools, project: Path, env_path: Path) -> list[str]:
    return [tools.venvkeeper, "deploy", str(project), "--env", str(env_path), "--python", tools.python]


def deploy(
    tools: Tools,
    project: Path,
    env_path: Path,
    env: Mapping[str, str],
    *extra: str,
    cwd: Path | None = None,
    fail: Callable[[str, Run], BenchError] = failed,
) -> tuple[Run, dict[str, Any]]:
    """``venvkeeper deploy project --env env_path ... --json`` run in ``cwd`` (default: beside the
    env); ``fail`` makes the error unless it exits 0 and reports ``ok``. The run and its report."""
    result = run([*deploy_argv(tools, project, env_path), *extra, "--json"], env, cwd or env_path.parent)
    payload = report_json(result)
    if result.returncode != 0 or not payload.get("ok"):
        raise fail("venvkeeper deploy", result)
    return result, payload


def rotated(i: int, items: Sequence[T]) -> list[T]:
    """``items`` starting with a different one each round ``i`` (A B, B A, ...)."""
    k = i % len(items)
    return [*items[k:], *items[:k]]


def progress(name: str, i: int, rounds: int, last: str) -> None:
    print(f"  {name} {i + 1}/{rounds}: {last}", file=sys.stderr, flush=True)


class Timed:
    """A command's timings over the rounds: mixed into a dataclass that has these two fields."""

    wall: list[float]
    internal: list[float]  # venvkeeper's JSON duration_s

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def internal_median(self) -> float | None:
        return statistics.median(self.internal) if self.internal else None

    def all_rounds(self) -> str:
        """Every round's wall time (ms), and the in-process times if any."""
        walls = ", ".join(ms(x) for x in self.wall)
        extra = f" (in-process: {', '.join(ms(x) for x in self.internal)})" if self.internal else ""
        return walls + extra


def paired_ratio(a: Timed, b: Timed) -> float:
    """Median of the round-by-round ratios (each round's runs were close together)."""
    return statistics.median(x / y for x, y in zip(a.wall, b.wall, strict=True))


# --------------------------------------------------------------------------- commands timed in rounds


@dataclass
class Command(Timed):
    """One timed command and its runs. ``kind``: venvkeeper's (a script names which kinds are its
    own, e.g. verify, or doctor and heal), anchor (the issue's) or info (an extra anchor).

    ``prepare`` runs before every run of the command, untimed (e.g. a fresh copy to heal).
    """

    key: str
    label: str  # as shown in the report, with $E/$PY/... placeholders
    argv: list[str]
    kind: str
    target: str = ""
    prepare: Callable[[], None] | None = None
    wall: list[float] = field(default_factory=list)
    internal: list[float] = field(default_factory=list)  # venvkeeper's JSON duration_s
    exits: list[int] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)  # the last JSON output
    payloads: list[dict[str, Any]] = field(default_factory=list)  # every timed run's JSON


def pass_anchor(python: str) -> Command:
    """``$PY -c pass``: the floor of any Python command line."""
    return Command("pass", "$PY -c pass", [python, "-c", "pass"], "anchor")


def uv_pip_anchor(tools: Tools, env_path: Path, sub: str) -> Command:
    """``uv pip check`` or ``uv pip list`` of the environment (key: ``sub``)."""
    argv = [tools.uv, "pip", sub, "--python", f"{env_path}/bin/python"]
    return Command(sub, f"uv pip {sub} --python $E/bin/python", argv, "anchor")


def execute(
    cmd: Command,
    env: Mapping[str, str],
    cwd: Path,
    *,
    timed: bool,
    ours: Collection[str],
    json_key: str,
    check: Callable[[Command, Run], bool] | None = None,
) -> Run:
    """Run ``cmd`` once (after its ``prepare``); check its outcome; record its time when ``timed``.

    A command of one of the kinds in ``ours`` (venvkeeper's) may exit 1 (findings: still a complete
    run, noted in the report); anything else it or an anchor exits with is a failure, and so is a
    ``--json`` run whose report lacks ``json_key``, and a run ``check`` rejects.
    """
    if cmd.prepare is not None:
        cmd.prepare()
    result = run(cmd.argv, env, cwd)
    ok = result.returncode in (0, 1) if cmd.kind in ours else result.returncode == 0
    if check is not None and not check(cmd, result):
        ok = False
    payload = report_json(result) if "--json" in cmd.argv else {}
    if "--json" in cmd.argv and json_key not in payload:
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


def time_rounds(
    name: str,
    commands: Sequence[Command],
    rounds: int,
    env: Mapping[str, str],
    cwd: Path,
    *,
    ours: Collection[str],
    json_key: str = "duration_s",
    check: Callable[[Command, Run], bool] | None = None,
) -> None:
    """One untimed run of each command (warms the page cache), then ``rounds`` interleaved rounds
    (see ``execute`` for ``ours``, ``json_key`` and ``check``); progress on stderr, as ``name``."""
    for cmd in commands:
        execute(cmd, env, cwd, timed=False, ours=ours, json_key=json_key, check=check)
    for i in range(rounds):
        for cmd in rotated(i, commands):
            execute(cmd, env, cwd, timed=True, ours=ours, json_key=json_key, check=check)
        progress(name, i, rounds, "  ".join(f"{c.key}={c.wall[-1] * 1000:.0f}ms" for c in commands))


@dataclass
class Part:
    """One measurement of a script: its commands, what it noted, and its error if it failed."""

    key: str
    title: str
    rounds: int
    commands: list[Command] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def get(self, key: str) -> Command:
        return next(c for c in self.commands if c.key == key)


def run_part(part: Part, step: Callable[[Part], None], prefix: str = "") -> Part:
    """``step(part)``; a failure is kept in ``part.error`` (and printed after ``prefix``)."""
    try:
        step(part)
    except BenchError as exc:
        part.error = str(exc)
        print(f"{prefix}FAILED: {exc}", file=sys.stderr)
    return part


def deploy_example(tools: Tools, work: Path, part: Part, prefix: str = "") -> tuple[Path, dict[str, str]]:
    """examples/webapp deployed (its hooks run; not timed) to ``work/env/.venv`` with a bench-owned uv
    cache: the ``--env`` path and the environment variables to run the commands with."""
    env_path = work / "env" / ".venv"
    env_path.parent.mkdir(parents=True)
    env = bench_env(work / "uv-cache")
    print(f"{prefix}deploying examples/webapp (not timed; its hooks run)", file=sys.stderr, flush=True)
    result, _ = deploy(tools, EXAMPLE, env_path, env)
    part.notes.append(f"the deploy of examples/webapp took {result.wall_s:.1f} s (not part of the timings)")
    return env_path, env


def entries(root: Path) -> tuple[int, int, int]:
    """(regular files, symlinks, bytes of the regular files) under ``root``, ``__pycache__`` skipped
    (the regular files are those ``find -type f`` lists)."""
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


# --------------------------------------------------------------------------- report


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


class HasRounds(Protocol):
    key: str
    rounds: int


def ratio_cell(a: Timed, b: Timed) -> str:
    """``a``'s median over ``b``'s, and in brackets the median of the round-by-round ratios."""
    return f"{a.median / b.median:.2f}x ({paired_ratio(a, b):.2f}x)"


def command_headers(*middle: str) -> list[str]:
    """The columns of a table of ``Command``s: the timings, ``middle``, the target and whether met."""
    return ["command", "median ms", "range ms", "of which in-process ms", *middle, "target", "met"]


def command_row(cmd: Command, middle: Sequence[str], within: str) -> list[str]:
    """A row under ``command_headers``."""
    return [
        f"`{cmd.label}`",
        ms(cmd.median),
        f"{ms(min(cmd.wall))}-{ms(max(cmd.wall))}",
        ms(cmd.internal_median),
        *middle,
        cmd.target or ("anchor" if cmd.kind == "anchor" else "(informational)"),
        within,
    ]


def anchored_rows(
    commands: Sequence[Command], anchors: Sequence[Command], ours: Collection[str], target_ms: float
) -> list[list[str]]:
    """A row per command: its timings, its ratio to each anchor (for the kinds in ``ours``), and for a
    ``<=`` target whether the median is within ``target_ms``."""
    out = []
    for cmd in commands:
        within = ""
        if cmd.target.startswith("<="):
            within = "yes" if cmd.median * 1000 <= target_ms else "no"
        ratios = [ratio_cell(cmd, a) if cmd.kind in ours else "" for a in anchors]
        out.append(command_row(cmd, ratios, within))
    return out


def rounds_of(items: Sequence[HasRounds], key: str) -> str:
    n = next((s.rounds for s in items if s.key == key), 0)
    return f"{n} round{'s' if n != 1 else ''}" if n else "not run"


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
        *("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows),
    ]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, for the terminal (Markdown code spans are shown without their backticks)."""
    table = [list(headers), *[[c.replace("`", "") for c in r] for r in rows]]
    widths = [max(len(r[c]) for r in table) for c in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def section_head(
    heading: str, command: str, machine: Mapping[str, str], python_note: str, venvkeeper_note: str = ""
) -> list[str]:
    """The first lines of a section: its heading, when and how it was measured, on what machine, and
    with which Python (``python_note`` in brackets after its version), uv and venvkeeper (followed by
    ``venvkeeper_note``)."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return [
        heading,
        "",
        f"Measured {today} with `{command}`.",
        "",
        f"- machine: {machine['nproc']} cores ({machine['cpu']}), {machine['os']}; a shared, noisy VM; "
        f"{machine['load']}",
        f"- Python {machine['python']} ({python_note})",
        f"- {machine['uv']} (`{machine['uv_path']}`; venvkeeper runs `{machine['venvkeeper_uv']}`)",
        f"- {machine['venvkeeper']} ({machine['source']}){venvkeeper_note}",
    ]


def ratio_legend(whose: str, who: str) -> str:
    """The paragraph above a table of ``anchored_rows``: ``whose`` median is over the anchor's, ``who``
    reports ``duration_s``."""
    return (
        "Wall-clock times in milliseconds (whole process, start to exit), warm page cache. A ratio "
        f"cell is {whose} median over the anchor's median, and in brackets the median of the "
        f'round-by-round ratios. "of which in-process" is the `duration_s` {who} reports in its JSON.'
    )


ROUNDS_NOTE = (
    "Before the rounds every command runs once untimed (the page cache is warm). Each round runs "
    "every command once, one after the other; the first command rotates from round to round. "
    "Run-to-run noise on this machine is large; compare ratios from the same run."
)


def table_block(headers: Sequence[str], rows: Sequence[Sequence[str]], verdict: str) -> list[str]:
    """A Markdown table and the verdict under it."""
    return [*table_lines(headers, rows), "", verdict, ""]


def failed_block(heading: str, error: str) -> list[str]:
    """``heading`` in bold and the error in a code block, where the table would be."""
    return [f"**{heading}**", "", "```", error, "```", ""]


def observation_lines(notes: Sequence[str]) -> list[str]:
    """The Observations subsection, a bullet a note (nothing if there are none)."""
    return ["### Observations", "", *(f"- {n}" for n in notes), ""] if notes else []


def all_rounds_lines(named: Iterable[tuple[str, Timed]]) -> list[str]:
    """The "All rounds" subsection: every round's times of each (name, timings)."""
    return ["### All rounds (ms)", "", *(f"- {name}: {t.all_rounds()}" for name, t in named), ""]


def print_part(
    part: Part,
    headers: Sequence[str],
    rows: Callable[[Part], Sequence[Sequence[str]]],
    verdict: Callable[[Part], str],
) -> None:
    """A part's title and its table and verdict on stdout (or its error)."""
    print(part.title)
    if part.error:
        print(f"FAILED:\n{part.error}\n")
    else:
        print(text_table(headers, rows(part)), "", verdict(part), "", sep="\n")


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """How the script was run, for the report: ``python bench/<script>`` and its arguments."""
    given = argv if argv is not None else sys.argv[1:]
    return " ".join([f"python bench/{script}", *given])


def conclude(
    notes: Iterable[str],
    path: Path | None,
    script: str,
    argv: Sequence[str] | None,
    heading: str,
    render: Callable[[str], str],
) -> None:
    """The end of a run: each of ``notes`` on stdout, then with ``--write`` (``path``) the section
    ``render(command line)`` written under ``heading``."""
    for note in notes:
        print(f"note: {note}")
    if path is None:
        return
    write_section(path, heading, render(command_line(script, argv)))
    print(f"\nwrote {path}", file=sys.stderr)


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the ``heading`` section of ``path`` (up to the next ``## ``), or add it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    path.write_text(new)
