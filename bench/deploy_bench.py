"""Deploy benchmark (issue 2): ``venvkeeper deploy`` against raw ``uv sync``, on examples/webapp.

    python bench/deploy_bench.py [--rounds N] [--cold-rounds N] [--write BENCHMARKS.md]

Three scenarios, each timed as wall-clock time of the whole command (process start to exit):

1. no-op: a second deploy with nothing changed vs ``uv sync`` into an already synced environment;
2. one member's code changed: a deploy that builds a new generation (a clone of the live one plus the
   member) vs ``uv sync --reinstall-package webapp`` into the environment uv synced before (the
   issue's anchor), and for information ``uv sync`` into a new environment with a warm cache;
3. cold cache: a fresh, empty ``UV_CACHE_DIR`` and a fresh environment path for both.

The tools run interleaved round by round (the order rotates every round) so that the machine's noise
hits both alike; the report is the median of the rounds and the ratio venvkeeper/uv of the medians.
Nothing fails on a ratio: the script measures and reports.

The measured project is a copy of examples/webapp (under bench/.work/, never the example itself) with
the ``[tool.venvkeeper.hooks]`` table removed: uv runs no hooks, so they are not part of what is
compared. The copy is a git repository, because venvkeeper hashes the git-tracked files.

venvkeeper runs as users run it (``--venvkeeper-from wheel``, the default): a wheel built from this
tree with ``uv build``, installed with the lock's runtime dependencies into a venv of its own under the
work dir, bytecode compiled as pip compiles on install. The development install next to the running
interpreter (``--venvkeeper-from tree``) is editable (a ``.pth`` pointing into src/) and, when
``PYTHONDONTWRITEBYTECODE`` is set, recompiles venvkeeper's modules on every start: a cost no user
pays (about 6 ms of a 22 ms no-op here).

``--write`` replaces this script's section; a run of only some scenarios (``--only``) keeps the other
scenarios' rows, observations and rounds from the section it replaces, marked with that run's date.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
from benchlib import EXAMPLE, REPO, BenchError, Run, Tools, bench_env, ms, run

PROG = "deploy_bench"
SECTION = "## deploy (issue 2)"
CHANGED_FILE = "packages/webapp/src/webapp/__init__.py"
UV_SYNC = ("sync", "--frozen", "--no-dev", "--no-editable")

# Issue 14's targets (the no-op with text output and with --json alike).
TARGETS = {"noop": 1.2, "noop-json": 1.2, "changed": 1.5, "cold": 1.1}
NOOP_JSON_TITLE = "no-op, --json"
TITLES = {
    "noop": "no-op (text output, as under cron)",
    "changed": "one member's code changed",
    "cold": "cold cache, new environment",
}


# --------------------------------------------------------------------------- running and timing


def git(work: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args],
        cwd=work,
        check=True,
        capture_output=True,
    )


@dataclass
class Series(benchlib.Timed):
    label: str
    wall: list[float] = field(default_factory=list)
    internal: list[float] = field(default_factory=list)  # venvkeeper's JSON duration_s


@dataclass
class Scenario:
    key: str
    title: str
    rounds: int
    venvkeeper: Series
    anchors: list[Series]  # anchors[0] is the one the target is against
    notes: list[str] = field(default_factory=list)
    error: str = ""


class Bench:
    def __init__(self, tools: Tools, work: Path) -> None:
        self.tools = tools
        self.work = work
        self.project = work / "project"
        self.cache = work / "uv-cache"
        # The --reinstall-package anchor writes a fresh build of webapp into the cache it uses; on the
        # shared cache, a plain sync run after it in the same round would install that fresh build.
        self.cache_reinstall = work / "uv-cache-reinstall"
        self.envs = work / "envs"
        self.counter = 0

    # -- setup

    def prepare_project(self) -> None:
        shutil.copytree(EXAMPLE, self.project, ignore=shutil.ignore_patterns(".venv*", "__pycache__"))
        pyproject = self.project / "pyproject.toml"
        pyproject.write_text(strip_table(pyproject.read_text(), "tool.venvkeeper.hooks"))
        config = tomllib.loads(pyproject.read_text()).get("tool", {}).get("venvkeeper", {})
        assert "hooks" not in config, "the hooks table is still there"
        (self.project / ".gitignore").write_text("build/\n*.egg-info/\n__pycache__/\n")
        git(self.project, "init", "-q")
        git(self.project, "add", "-A")
        git(self.project, "commit", "-q", "-m", "benchmark copy of examples/webapp, hooks removed")

    def fresh(self, prefix: str) -> Path:
        self.counter += 1
        return self.envs / f"{prefix}-{self.counter:03d}"

    # -- the two commands

    def venvkeeper(self, env_path: Path, env: Mapping[str, str], *extra: str) -> tuple[Run, dict[str, Any]]:
        return benchlib.deploy(
            self.tools, self.project, env_path, env, *extra, cwd=self.work, fail=benchlib.failure
        )

    def uv_sync(self, env_path: Path, env: Mapping[str, str], *extra: str) -> Run:
        argv = [
            self.tools.uv,
            *UV_SYNC,
            *extra,
            "--project",
            str(self.project),
            "--python",
            self.tools.python,
        ]
        result = run(argv, {**env, "UV_PROJECT_ENVIRONMENT": str(env_path)}, self.work)
        if result.returncode != 0:
            raise benchlib.failure("uv sync", result, f" (UV_PROJECT_ENVIRONMENT={env_path})")
        return result

    # -- scenarios

    def warm_up(self, vk_env: Path, uv_env: Path) -> None:
        env = bench_env(self.cache)
        _, payload = self.venvkeeper(vk_env, env)
        assert payload["changed"], payload
        self.uv_sync(uv_env, env)
        throwaway = self.fresh("warm-up")
        self.uv_sync(throwaway, bench_env(self.cache_reinstall))
        shutil.rmtree(throwaway)

    def noop(self, rounds: int, vk_env: Path, uv_env: Path) -> list[Scenario]:
        env = bench_env(self.cache)
        vk, uv = Series("venvkeeper deploy --json (unchanged)"), Series("uv sync (already synced)")
        text = Series("venvkeeper deploy (unchanged)")
        # The steady state under cron: the tree has been still for longer than the no-op stamp's racy
        # window (2 s), and one deploy has written the stamp.
        time.sleep(2.2)
        self.venvkeeper(vk_env, env)

        def do_vk() -> None:
            result, payload = self.venvkeeper(vk_env, env)
            if payload.get("changed"):
                raise BenchError(f"no-op deploy reported a change:\n{result.stdout}")
            vk.wall.append(result.wall_s)
            vk.internal.append(payload["duration_s"])

        def do_text() -> None:
            result = run(benchlib.deploy_argv(self.tools, self.project, vk_env), env, self.work)
            if result.returncode != 0 or "is unchanged" not in result.stdout:
                raise benchlib.failure("venvkeeper deploy (text)", result)
            text.wall.append(result.wall_s)

        def do_uv() -> None:
            uv.wall.append(self.uv_sync(uv_env, env).wall_s)

        for i in range(rounds):
            interleave(i, [do_vk, do_text, do_uv])
            round_done("no-op", i, rounds, [vk, text, uv])
        return [
            Scenario("noop", TITLES["noop"], rounds, text, [uv]),
            Scenario("noop-json", NOOP_JSON_TITLE, rounds, vk, [uv]),
        ]

    def changed(self, rounds: int, vk_env: Path) -> Scenario:
        env, env_reinstall = bench_env(self.cache), bench_env(self.cache_reinstall)
        vk = Series("venvkeeper deploy --keep 1 (new generation)")
        uv = Series("uv sync, new env (warm cache)")
        # The anchor: uv installing the changed member into the environment it already has.
        uv_re = Series("uv sync --reinstall-package webapp, existing env")
        fresh_code = {vk.label: 0, uv.label: 0, uv_re.label: 0}
        rebuilt: list[list[str]] = []
        existing = self.fresh("uv-existing")
        self.uv_sync(existing, env_reinstall)  # untimed: the environment the rounds reinstall into

        for i in range(rounds):
            marker = f"bench round {i} {uuid.uuid4().hex}"
            changed = self.project / CHANGED_FILE
            changed.write_text(changed.read_text() + f"# {marker}\n")
            git(self.project, "commit", "-q", "-am", marker)
            uv_path, re_path = self.fresh("uv-warm"), existing

            def do_vk(marker: str = marker) -> None:
                result, payload = self.venvkeeper(vk_env, env, "--keep", "1")
                if not payload.get("changed"):
                    raise BenchError(f"deploy after a code change reported no change:\n{result.stdout}")
                vk.wall.append(result.wall_s)
                vk.internal.append(payload["duration_s"])
                rebuilt.append(payload.get("rebuilt", []))
                fresh_code[vk.label] += has_marker(vk_env, marker)

            def do_uv(marker: str = marker, path: Path = uv_path) -> None:
                uv.wall.append(self.uv_sync(path, env).wall_s)
                fresh_code[uv.label] += has_marker(path, marker)

            def do_uv_re(marker: str = marker, path: Path = re_path) -> None:
                result = self.uv_sync(path, env_reinstall, "--reinstall-package", "webapp")
                uv_re.wall.append(result.wall_s)
                fresh_code[uv_re.label] += has_marker(path, marker)

            interleave(i, [do_vk, do_uv, do_uv_re])
            shutil.rmtree(uv_path, ignore_errors=True)
            round_done("changed", i, rounds, [vk, uv_re, uv])

        shutil.rmtree(existing, ignore_errors=True)
        scenario = Scenario("changed", TITLES["changed"], rounds, vk, [uv_re, uv])
        scenario.notes.append(
            "installed the changed code (the round's marker comment is in the installed "
            "webapp/__init__.py): " + ", ".join(f"{label}: {n}/{rounds}" for label, n in fresh_code.items())
        )
        kinds = sorted({",".join(r) or "-" for r in rebuilt})
        scenario.notes.append(f"venvkeeper `rebuilt` per round: {' / '.join(kinds)}")
        return scenario

    def cold(self, rounds: int) -> Scenario:
        vk, uv = Series("venvkeeper deploy (cold cache, new --env)"), Series("uv sync (cold cache, new env)")

        def do_vk() -> None:
            cache, path = self.fresh("cache-vk"), self.fresh("vk-cold")
            try:
                result, payload = self.venvkeeper(path, bench_env(cache))
                vk.wall.append(result.wall_s)
                vk.internal.append(payload["duration_s"])
            finally:
                remove_env(path)
                shutil.rmtree(cache, ignore_errors=True)

        def do_uv() -> None:
            cache, path = self.fresh("cache-uv"), self.fresh("uv-cold")
            try:
                uv.wall.append(self.uv_sync(path, bench_env(cache)).wall_s)
            finally:
                shutil.rmtree(path, ignore_errors=True)
                shutil.rmtree(cache, ignore_errors=True)

        for i in range(rounds):
            interleave(i, [do_vk, do_uv])
            round_done("cold", i, rounds, [vk, uv])
        return Scenario("cold", TITLES["cold"], rounds, vk, [uv])


def interleave(i: int, steps: Sequence[Callable[[], None]]) -> None:
    """Run every tool once, starting with a different one each round (A B, B A, ...)."""
    for step in benchlib.rotated(i, steps):
        step()


def remove_env(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    shutil.rmtree(path.with_name(path.name + ".venvkeeper"), ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def has_marker(env_path: Path, marker: str) -> int:
    found = list(env_path.resolve().glob("lib/python*/site-packages/webapp/__init__.py"))
    return int(bool(found) and marker in found[0].read_text())


def strip_table(text: str, name: str) -> str:
    """``text`` without the TOML table ``[name]`` (its header, body and the comments in it)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    skipping = False
    for line in lines:
        header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", line)
        if header:
            skipping = header.group(1) == name
        if not skipping:
            out.append(line)
    return "".join(out).rstrip("\n") + "\n"


def round_done(name: str, i: int, rounds: int, series: Sequence[Series]) -> None:
    last = "  ".join(f"{s.label.split(' (')[0].split(',')[0]}={s.wall[-1] * 1000:.0f}ms" for s in series)
    benchlib.progress(name, i, rounds, last)


# --------------------------------------------------------------------------- report


def rows(scenarios: Sequence[Scenario]) -> list[list[str]]:
    out = []
    for s in scenarios:
        if s.error:
            out.append([s.title, "FAILED", "-", "-", "-", "-", "-", f"<= {TARGETS[s.key]}x", "-"])
            continue
        for n, anchor in enumerate(s.anchors):
            ratio = s.venvkeeper.median / anchor.median
            target = TARGETS[s.key]
            out.append(
                [
                    s.title if n == 0 else "",
                    ms(s.venvkeeper.median) if n == 0 else "",
                    ms(s.venvkeeper.internal_median) if n == 0 else "",
                    anchor.label,
                    ms(anchor.median),
                    f"{ratio:.2f}x",
                    f"{benchlib.paired_ratio(s.venvkeeper, anchor):.2f}x",
                    f"<= {target}x" if n == 0 else f"({target}x, informational)",
                    ("yes" if ratio <= target else "no") if n == 0 else "",
                ]
            )
    return out


HEADERS = [
    "scenario",
    "venvkeeper ms",
    "of which in-process ms",
    "uv command",
    "uv ms",
    "ratio vk/uv",
    "per-round ratio, median",
    "target",
    "within",
]


def markdown(
    scenarios: Sequence[Scenario], machine: Mapping[str, str], command: str, carried: Carried | None = None
) -> str:
    project, env_vk = "$W", "$E"
    uv_cmd = f"UV_PROJECT_ENVIRONMENT=$UVENV uv {' '.join(UV_SYNC)} --project {project} --python $PY"
    vk_cmd = f"venvkeeper deploy {project} --env {env_vk} --python $PY --json"
    python_note = f"`$PY` = `{machine['python_path']}`, given to both tools"

    def rounds(key: str) -> str:
        n = benchlib.rounds_of(scenarios, key)
        earlier = carried is not None and TITLES[key] in carried.titles
        return "not run; its rows are from an earlier run" if n == "not run" and earlier else n

    out = [
        *benchlib.section_head(SECTION, command, machine, python_note, f", {machine['git']}"),
        f"- {machine['installed']}",
        "",
        "Wall-clock medians in milliseconds (whole process, start to exit). The ratio is "
        "venvkeeper's median over uv's median; the per-round ratio is the median of the ratios of the "
        'runs made back to back in the same round. "of which in-process" is the `duration_s` venvkeeper '
        "reports in its JSON; the rest of its wall time is Python start-up, imports and output.",
        "",
        *benchlib.table_lines(HEADERS, rows(scenarios)),
        *(carried.rows if carried else []),
        "",
        *([carried.note(), ""] if carried and carried.rows else []),
    ]
    for s in scenarios:
        if s.error:
            out += benchlib.failed_block(f"{s.title}: failed.", s.error)
    out += [
        "### Commands",
        "",
        "`$W` is a copy of `examples/webapp` (in `bench/.work/`) whose root `pyproject.toml` has the "
        "`[tool.venvkeeper.hooks]` table removed: the example's post-deploy hooks (`alembic upgrade "
        "head`, `webapp check`, about 2 s) are not part of the comparison, since uv runs no hooks. "
        "The copy is committed to a fresh git repository (venvkeeper hashes the git-tracked files). "
        "Every command runs with `UV_CACHE_DIR` pointed at a bench-owned directory and "
        "`UV_PYTHON_DOWNLOADS=never`.",
        "",
        "```sh",
        "# venvkeeper",
        vk_cmd,
        "# uv (the issue's command, plus --project and the same --python)",
        uv_cmd,
        "```",
        "",
        "### Scenarios",
        "",
        f"- **no-op** ({rounds('noop')}): after one warm-up deploy and one "
        "warm-up sync, the deploy (it reports `unchanged`) against `uv sync` into the environment it "
        "has already synced; the deploy runs twice a round, with text output (as under cron) and with "
        "`--json`.",
        f"- **one member's code changed** ({rounds('changed')}): each round "
        f"appends a comment line to `{CHANGED_FILE}` and commits it, then times the deploy with "
        "`--keep 1` (a new generation: a hard-link clone of the live one with only `webapp` installed "
        "into it) against the issue's anchor, `uv sync --reinstall-package webapp` into the environment "
        "it synced before the rounds (plain `uv sync` would keep uv's cached build of `webapp`, i.e. the "
        "*old* code: uv keys a local member's build on its `pyproject.toml`, not its sources, the defect "
        "venvkeeper exists to fix). That uv has a warm cache of its own, as its rebuild refreshes it. "
        "For information, plain `uv sync` into a new, empty `UV_PROJECT_ENVIRONMENT` with the warm cache.",
        f"- **cold** ({rounds('cold')}): every run gets its own new, "
        "empty `UV_CACHE_DIR` and a new environment path (for venvkeeper a new `--env`, so its own "
        "member-wheel cache is empty too). Packages come from PyPI, so network time is included.",
        "",
        "Each round runs every command once, one after the other; the first command rotates from "
        "round to round, so noise and any ordering effect fall on all of them alike. Run-to-run "
        "noise on this machine is large; compare ratios from the same run, not across runs.",
        "",
    ]
    notes = [f"{s.title}: {n}" for s in scenarios for n in s.notes]
    out += benchlib.observation_lines([*notes, *(carried.observations if carried else [])])
    out += benchlib.all_rounds_lines(
        (f"{s.title} / {series.label}", series)
        for s in scenarios
        if not s.error
        for series in [s.venvkeeper, *s.anchors]
    )
    if carried and carried.rounds:
        out = [*out[:-1], *carried.rounds, ""]
    return "\n".join(out)


@dataclass
class Carried:
    """What a run of only some scenarios keeps of the section it replaces: the other scenarios' table
    rows (their scenario cell marked with that run's date), observations and rounds."""

    rows: list[str]
    titles: list[str]
    observations: list[str]
    rounds: list[str]
    date: str
    command: str

    def note(self) -> str:
        return (
            "Rows marked *(earlier run, DATE)* were not measured by this run (`--only`): they are kept, "
            "with their observations and rounds, from the section this one replaced (measured "
            f"{self.date} with `{self.command}`) or one before it. Compare ratios within one run."
        )


_EARLIER = re.compile(r" \*\(earlier run, [^)]*\)\*$")


def carried_over(path: Path | None, measured: Collection[str]) -> Carried | None:
    """The lines of ``path``'s section for the scenarios whose titles are not in ``measured``."""
    if path is None or not path.exists():
        return None
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    section = lines[start + 1 : end]
    head = next((m for line in section if (m := re.match(r"Measured (\S+) with `(.*)`\.$", line))), None)
    date, command = (head.group(1), head.group(2)) if head else ("an earlier run", "?")
    rows: list[str] = []
    kept: list[str] = []
    keep = False
    for line in section:
        if not line.startswith("| ") or line.startswith("| scenario |"):
            continue
        first = line[2:].split(" | ", 1)[0]
        if first:
            title = _EARLIER.sub("", first)
            keep = title not in measured
            if keep:
                kept.append(title)
        if keep:
            marked = first and _EARLIER.sub("", first) == first
            rows.append(
                f"| {first} *(earlier run, {date})* | {line[2:].split(' | ', 1)[1]}" if marked else line
            )
    observations = [line[2:] for line in section if any(line.startswith(f"- {t}: ") for t in kept)]
    rounds = [line for line in section if any(line.startswith(f"- {t} / ") for t in kept)]
    return Carried(rows, kept, observations, rounds, date, command)


# --------------------------------------------------------------------------- venvkeeper as users have it


INSTALLED = {
    "wheel": "venvkeeper is a wheel of this tree (`uv build --wheel`) installed with the lock's runtime "
    "dependencies into a venv of its own, bytecode compiled (`uv pip install --compile-bytecode`, as "
    "pip compiles on install): what a user runs",
    "tree": "venvkeeper is the development install (editable: a `.pth` into src/; with "
    "`PYTHONDONTWRITEBYTECODE` set its modules are compiled on every start)",
}


def install_wheel(tools: Tools, work: Path) -> str:
    """A wheel of this tree installed into ``work/venvkeeper`` with the lock's runtime dependencies
    (so venvkeeper runs the uv version the lock pins): the console script's path.

    Runs with the caller's environment, so uv uses its default cache (the development install's
    dependencies are in it already) rather than the scenarios' bench-owned caches.
    """
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    dist, venv, requirements = work / "dist", work / "venvkeeper", work / "venvkeeper-requirements.txt"
    print("installing venvkeeper from a wheel of this tree (not timed)", file=sys.stderr)
    steps = [
        [tools.uv, "build", "--wheel", "--quiet", "--out-dir", str(dist), str(REPO)],
        [
            tools.uv,
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--quiet",
            "--project",
            str(REPO),
            "--output-file",
            str(requirements),
        ],
        [tools.uv, "venv", "--quiet", "--python", benchlib.default_python(), str(venv)],
    ]
    for argv in steps:
        checked(argv, env, work)
    wheels = sorted(dist.glob("venvkeeper-*.whl"))
    install = [
        tools.uv,
        "pip",
        "install",
        "--quiet",
        "--compile-bytecode",
        "--python",
        str(venv / "bin" / "python"),
    ]
    checked([*install, "-r", str(requirements), str(wheels[-1])], env, work)
    return str(venv / "bin" / "venvkeeper")


def checked(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
    result = run(argv, env, cwd)
    if result.returncode != 0:
        raise SystemExit(str(benchlib.failed(argv[1] if len(argv) > 1 else argv[0], result)))


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the fast scenarios (default 7)")
    parser.add_argument("--cold-rounds", type=int, default=3, help="rounds of the cold scenario (default 3)")
    benchlib.add_common_options(parser, "deploy", python_help="interpreter given to both tools")
    parser.add_argument(
        "--only", choices=["noop", "changed", "cold"], action="append", help="run only these scenarios"
    )
    parser.add_argument(
        "--venvkeeper-from",
        choices=["wheel", "tree"],
        default="wheel",
        help="wheel (default): a wheel of this tree installed into its own venv, as users run it; "
        "tree: the development install next to this interpreter (editable)",
    )
    return parser.parse_args(argv)


def run_scenarios(bench: Bench, args: argparse.Namespace) -> list[Scenario]:
    """Every selected scenario; a failing one is reported with its error and the others still run."""
    only = set(args.only or ["noop", "changed", "cold"])
    bench.prepare_project()
    vk_env, uv_env = bench.envs / "vk-warm", bench.envs / "uv-warm"
    warm_up_error = ""
    if only & {"noop", "changed"}:
        print("warm-up (fills the bench cache; not timed)", file=sys.stderr)
        try:
            bench.warm_up(vk_env, uv_env)
        except BenchError as exc:
            warm_up_error = f"in the warm-up: {exc}"
    plan: list[tuple[str, str, int, Callable[[], Scenario | list[Scenario]]]] = [
        ("noop", "no-op", args.rounds, lambda: bench.noop(args.rounds, vk_env, uv_env)),
        ("changed", "one member's code changed", args.rounds, lambda: bench.changed(args.rounds, vk_env)),
        ("cold", "cold cache, new environment", args.cold_rounds, lambda: bench.cold(args.cold_rounds)),
    ]
    scenarios: list[Scenario] = []
    for key, title, rounds, step in plan:
        if key not in only:
            continue
        print(f"{title}:", file=sys.stderr)
        error = warm_up_error if key != "cold" else ""
        if not error:
            try:
                done = step()
                scenarios.extend(done if isinstance(done, list) else [done])
            except BenchError as exc:
                error = str(exc)
        if error:
            print(f"  FAILED: {error}", file=sys.stderr)
            scenarios.append(Scenario(key, title, rounds, Series(""), [], error=error))
    return scenarios


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG, vk_python=False)
    if args.venvkeeper_from == "wheel":
        tools.venvkeeper = install_wheel(tools, work)
    machine = {**tools.machine(), "git": benchlib.capture(["git", "--version"])}
    machine["installed"] = INSTALLED[args.venvkeeper_from]
    scenarios = benchlib.measure(
        lambda: run_scenarios(Bench(tools, work), args), tools, machine, work, keep_work=args.keep_work
    )
    print(benchlib.text_table(HEADERS, rows(scenarios)))
    for s in scenarios:
        for note in s.notes:
            print(f"note: {s.title}: {note}")
        if s.error:
            print(f"\n{s.title} FAILED:\n{s.error}")
    # A run of only some scenarios keeps the others' rows of the section it replaces.
    carried = carried_over(args.write, {s.title for s in scenarios}) if args.only else None
    benchlib.conclude(
        [],
        args.write,
        "deploy_bench.py",
        argv,
        SECTION,
        lambda command: markdown(scenarios, machine, command, carried),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
