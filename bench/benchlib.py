"""What the benchmark scripts share: finding the tools, describing the machine, running and timing
commands, and writing a script's section of BENCHMARKS.md.

The scripts run as ``python bench/X.py``, so bench/ is on ``sys.path`` and ``import benchlib`` finds
this module; it is not part of the venvkeeper package.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

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
    return capture([interpreter, "-c", "from venvkeeper.uvcmd import find_uv; print(find_uv())"])


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


def announce(tools: Tools, machine: Mapping[str, str], work: Path) -> None:
    """What is measured, on stderr, before the run."""
    print(
        f"venvkeeper: {tools.venvkeeper} ({machine['source']})\nuv: {tools.uv} ({machine['uv']}; "
        f"venvkeeper runs {machine['venvkeeper_uv']})\n"
        f"python: {tools.reported_python} ({machine['python']})\nwork: {work}",
        file=sys.stderr,
    )


def measure(body: Callable[[], T], machine: dict[str, str], work: Path, *, keep_work: bool) -> T:
    """``body()``, then ``work`` removed (unless ``keep_work``); notes the load and any src/ change in
    ``machine`` and prints the total time on stderr."""
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


# --------------------------------------------------------------------------- report


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


class HasRounds(Protocol):
    key: str
    rounds: int


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


def section_head(heading: str, command: str, machine: Mapping[str, str]) -> list[str]:
    """The first lines of a section: its heading, when and how it was measured, and on what machine."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return [
        heading,
        "",
        f"Measured {today} with `{command}`.",
        "",
        f"- machine: {machine['nproc']} cores ({machine['cpu']}), {machine['os']}; a shared, noisy VM; "
        f"{machine['load']}",
    ]


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """How the script was run, for the report: ``python bench/<script>`` and its arguments."""
    given = argv if argv is not None else sys.argv[1:]
    return " ".join([f"python bench/{script}", *given])


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
