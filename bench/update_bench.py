"""Update benchmark (issue 5): ``venvkeeper update``'s cycle against ``uv lock --upgrade`` + ``uv sync``.

    python bench/update_bench.py [--rounds N] [--write BENCHMARKS.md]

The issue's requirement: "The whole cycle without the test run: at most 2x (`uv lock --upgrade` +
uv's warm sync) on the example, measured in one run."

Setup (not timed): the git-tracked files of examples/webapp are copied into a new git repository on
branch ``main`` with a bare remote (``origin``, upstream set); the ``[tool.venvkeeper.hooks]`` table
is removed (uv runs no hooks; as in the deploy benchmark). That copy is committed as it is, then a
handful of packages are locked at an older patch release (``uv lock --upgrade-package NAME==OLDER``)
and committed again: the "old" state, which ``--policy patch`` takes back up. The old state is
deployed with ``venvkeeper deploy`` to an environment outside the repository. A second clone of the
old state, with its own ``.venv`` synced to the old lock by uv, serves the uv anchors.

Every round (after one untimed round that warms uv's cache), with the units rotated:

- venvkeeper: the repository reset (and force-pushed) to the old commit and the live environment
  switched back to the old lock's generation (``venvkeeper rollback --to``, or a deploy when that
  generation has been pruned), untimed; then, timed,
  ``venvkeeper update REPO --env ENV --policy patch --test-command true --json`` (it must report
  ``updated``) and the same command again (the lock is now current: it must report ``no-updates``).
  ``--test-command true`` makes the test runs about 0, so this is "the cycle without the test run".
- the issue's anchor: the clone's ``uv.lock`` and ``.venv`` reset to the old lock (untimed), then
  ``uv lock --upgrade`` and ``uv sync`` timed one after the other; then ``uv lock --upgrade`` again
  (the lock is current: the no-update anchor).
- informational, closer in kind: the same reset, then ``uv lock --upgrade-package`` with the bounded
  requests venvkeeper makes under ``--policy patch`` (computed with venvkeeper's own ``updateplan``)
  and ``uv sync``.
- informational, for the breakdown: ``venvkeeper verify --env`` and ``uv lock --check --offline``
  (both in venvkeeper's preflight), and the sync venvkeeper's candidate environment starts with
  (``uv sync --frozen --all-packages --no-editable --group dev`` into a new environment, from a copy
  of the tracked files at a new path, as venvkeeper's staging copy is; and from a fixed path).
- informational, with a test run: the same reset, then ``venvkeeper update ... --test-command
  'sleep 2'``, its wall time less the test runs it reports. The next generation is built while the
  baseline's tests run, so with any real suite its build is not on the critical path; with ``true``
  it is.

Every command runs with a bench-owned ``UV_CACHE_DIR`` and ``UV_PYTHON_DOWNLOADS=never``; no mail is
configured. The registry is public PyPI, so uv's revalidation of index pages is part of the times of
both tools. Nothing fails on the ratio: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
from benchlib import EXAMPLE, REPO, BenchError, Run, Tools, bench_env, ms, run
from deploy_bench import UV_SYNC, Series, strip_table

PROG = "update_bench"
SECTION = "## update (issue 5)"
TARGET = 2.0  # venvkeeper's cycle over (uv lock --upgrade + uv sync)
SLOW_TESTS = 2.0  # seconds: longer than building the next generation takes here

# Older patch releases (same major.minor as examples/webapp/uv.lock) that the old state is locked at.
OLDER = {
    "werkzeug": "3.1.8",
    "markupsafe": "3.0.3",
    "jinja2": "3.1.5",
    "sqlalchemy": "2.1.8",
    "click": "8.5.0",
    "requests": "2.34.1",
}
IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@localhost")
# A candidate synced by uv alone, members built by uv (what venvkeeper's candidate did before it took
# the members' wheels from deploy's cache), with the example's groups: none to deploy, dev to test
CANDIDATE_SYNC = ("sync", "--frozen", "--all-packages", "--no-editable", "--group", "dev", "--quiet")
STEPS = ("preflight", "candidate", "generation", "tests", "relock", "commit", "push", "deploy", "notify")
STEP_WHAT = {
    "preflight": "git checks, lock parse, staging copy, `uv lock --check --offline`, `verify` of the env",
    "candidate": "the test environments: a hard-link clone of the live generation (baseline), then of the "
    "next one, each with the test groups added (`uv sync --inexact`)",
    "generation": "the next generation from the new lock, as a deploy builds it (clone of the live one, "
    "`uv sync --inexact`, the smoke check, whose imports write the bytecode they load, seal), beside the "
    "baseline's tests",
    "tests": "the test command (`true`), baseline and candidate",
    "relock": "`uv lock --upgrade-package NAME<BOUND` for every registry package, in the staging copy",
    "commit": "uv.lock written, `git add` + `git commit`",
    "push": "`git push origin HEAD:main` (a local bare remote)",
    "deploy": "the switch to the tested generation: its record, the symlink, the prune (a deploy only as "
    "a fallback)",
    "notify": "mail (none configured)",
}


# --------------------------------------------------------------------------- setup and commands


def locked(lock_text: str) -> dict[str, str]:
    """name -> version of every package in a uv.lock."""
    return {p["name"]: str(p.get("version")) for p in tomllib.loads(lock_text).get("package", [])}


def lock_changes(old: str, new: str) -> list[str]:
    """``name old -> new`` for every package whose version differs (added or removed too)."""
    a, b = locked(old), locked(new)
    return [
        f"{n} {a.get(n, '-')} -> {b.get(n, '-')}" for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)
    ]


def vk_changes(payload: Mapping[str, Any]) -> list[str]:
    return sorted(f"{c['name']} {c['old'] or '-'} -> {c['new'] or '-'}" for c in payload.get("changes") or [])


@dataclass
class Results:
    rounds: int
    series: dict[str, Series] = field(default_factory=dict)
    durations: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # outcome -> runs
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)  # outcome -> the last JSON
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def add(self, key: str, label: str) -> Series:
        self.series[key] = Series(label)
        return self.series[key]

    def get(self, key: str) -> Series:
        return self.series[key]


class Bench:
    def __init__(self, tools: Tools, work: Path, results: Results) -> None:
        self.tools = tools
        self.work = work
        self.results = results
        self.project = work / "project"
        self.remote = work / "remote.git"
        self.anchor = work / "anchor"
        self.env_path = work / "live" / ".venv"
        self.env = {k: v for k, v in bench_env(work / "uv-cache").items() if not k.startswith("VENVKEEPER_")}
        self.old_commit = ""
        self.old_lock = ""
        self.old_gen: int | None = None
        self.requests: list[str] = []
        self.counter = 0

    # -- running

    def run(self, what: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> Run:
        result = run(argv, env or self.env, cwd)
        if result.returncode != 0:
            raise benchlib.failed(what, result)
        return result

    def git(self, repo: Path, *args: str) -> str:
        return self.run("git", ["git", *IDENTITY, *args], repo).stdout.strip()

    def uv(self, cwd: Path, *args: str) -> Run:
        return self.run(f"uv {args[0]}", [self.tools.uv, *args], cwd)

    def sync(self, project: Path) -> Run:
        """The anchor's sync: deploy_bench's ``uv sync`` into the project's own .venv."""
        return self.uv(project, *UV_SYNC, "--python", self.tools.python)

    def update_argv(self, tests: str = "true") -> list[str]:
        return [
            self.tools.venvkeeper,
            "update",
            str(self.project),
            "--env",
            str(self.env_path),
            "--policy",
            "patch",
            "--test-command",
            tests,
            "--json",
        ]

    def update(self, outcome: str, tests: str = "true") -> tuple[Run, dict[str, Any]]:
        result = run(self.update_argv(tests), self.env, self.work)
        payload = benchlib.report_json(result)
        if payload.get("outcome") != outcome or result.returncode != 0:
            raise BenchError(
                f"venvkeeper update reported {payload.get('outcome')!r} (exit {result.returncode}), "
                f"expected {outcome!r}\n$ {' '.join(result.argv)}\n--- stdout ---\n{result.stdout.rstrip()}"
                f"\n--- stderr ---\n{result.stderr.rstrip()[-4000:]}"
            )
        return result, payload

    # -- setup

    def setup(self) -> None:
        self.copy_example()
        pyproject = self.project / "pyproject.toml"
        pyproject.write_text(strip_table(pyproject.read_text(), "tool.venvkeeper.hooks"))
        (self.project / ".gitignore").write_text("build/\n*.egg-info/\n__pycache__/\n.venv/\n")
        self.git(self.project, "init", "-q", "-b", "main")
        self.git(self.project, "add", "-A")
        self.git(self.project, "commit", "-q", "-m", "examples/webapp, hooks removed")
        current = (self.project / "uv.lock").read_text()
        self.uv(self.project, "lock", "--quiet", *[f"--upgrade-package={n}=={v}" for n, v in OLDER.items()])
        self.old_lock = (self.project / "uv.lock").read_text()
        now = locked(self.old_lock)
        wrong = {n: now.get(n) for n, v in OLDER.items() if now.get(n) != v}
        if wrong:
            raise BenchError(f"the old lock does not hold the older versions: {wrong}")
        self.git(self.project, "commit", "-q", "-am", "older patch releases")
        self.old_commit = self.git(self.project, "rev-parse", "HEAD")
        self.results.facts["old_changes"] = lock_changes(current, self.old_lock)
        self.git(self.work, "init", "-q", "--bare", "-b", "main", str(self.remote))
        self.git(self.project, "remote", "add", "origin", str(self.remote))
        self.git(self.project, "push", "-q", "-u", "origin", "main")
        self.git(self.work, "clone", "-q", str(self.project), str(self.anchor))
        self.requests = self.bounded_requests()
        print("deploying the old state (not timed)", file=sys.stderr, flush=True)
        self.env_path.parent.mkdir(parents=True)
        result, payload = benchlib.deploy(self.tools, self.project, self.env_path, self.env)
        self.old_gen = payload.get("generation")
        self.results.notes.append(
            f"the first deploy of the old state took {result.wall_s:.1f} s (not part of the timings)"
        )
        self.sync(self.anchor)

    def copy_example(self) -> None:
        listed = self.run("git ls-files", ["git", "ls-files", "-z", "--", str(EXAMPLE)], REPO).stdout
        for name in filter(None, listed.split("\0")):
            source = REPO / name
            dest = self.project / source.relative_to(EXAMPLE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)

    def bounded_requests(self) -> list[str]:
        """The ``--upgrade-package`` requests venvkeeper's relock makes on the old lock (no overrides)."""
        code = (
            "import json, sys, tomllib\n"
            "from venvkeeper.update import plan as updateplan\n"
            "lock = tomllib.loads(open(sys.argv[1]).read())\n"
            "versions = updateplan.locked_versions(lock, registry_only=True)\n"
            "print(json.dumps(list(updateplan.plan_upgrade(versions, 'patch', {}).requests)))\n"
        )
        out = self.run(
            "updateplan", [self.tools.vk_python, "-c", code, str(self.project / "uv.lock")], self.work
        )
        return list(json.loads(out.stdout))

    # -- resets (untimed)

    def reset_live(self) -> None:
        """The repository and its remote at the old commit, the live environment on the old lock."""
        self.git(self.project, "reset", "-q", "--hard", self.old_commit)
        self.git(self.project, "push", "-q", "-f", "origin", f"{self.old_commit}:main")
        if self.old_gen is not None:
            argv = [self.tools.venvkeeper, "rollback", "--env", str(self.env_path), "--to", str(self.old_gen)]
            if run([*argv, "--json"], self.env, self.work).returncode == 0:
                return
        _, payload = benchlib.deploy(self.tools, self.project, self.env_path, self.env)
        self.old_gen = payload.get("generation")

    def reset_anchor(self) -> None:
        (self.anchor / "uv.lock").write_text(self.old_lock)
        self.sync(self.anchor)

    # -- the units of a round

    def unit_venvkeeper(self, timed: bool) -> None:
        self.reset_live()
        for key, outcome in (("update", "updated"), ("noop", "no-updates")):
            result, payload = self.update(outcome)
            self.results.payloads[outcome] = payload
            if outcome == "updated":
                self.results.facts.setdefault("tested_live", []).append(self.tested_live())
            if timed:
                s = self.results.get(key)
                s.wall.append(result.wall_s)
                s.internal.append(float(payload["durations"]["total"]))
                self.results.durations.setdefault(outcome, []).append(payload["durations"])

    def unit_slow_tests(self, timed: bool) -> None:
        """An update whose tests take SLOW_TESTS seconds: the next generation is built beside the
        baseline's tests, as with a real suite; the wall time less the test runs is recorded."""
        self.reset_live()
        result, payload = self.update("updated", f"sleep {SLOW_TESTS:g}")
        if timed:
            tests = float(payload["durations"].get("tests", 0.0))
            self.results.get("update-slow").wall.append(result.wall_s - tests)
            self.results.get("update-slow").internal.append(float(payload["durations"]["total"]) - tests)

    def tested_live(self) -> bool:
        """The live generation's record names the environment the tests ran in (no second build)."""
        live = self.env_path.resolve()
        record = json.loads((live.parent / f"{live.name}.json").read_text())
        return bool((record.get("built") or {}).get("tested_in"))

    def unit_anchor(self, timed: bool) -> None:
        self.reset_anchor()
        lock = self.uv(self.anchor, "lock", "--upgrade")
        new_lock = (self.anchor / "uv.lock").read_text()
        sync = self.sync(self.anchor)
        again = self.uv(self.anchor, "lock", "--upgrade")
        if (self.anchor / "uv.lock").read_text() != new_lock:
            raise BenchError("a second `uv lock --upgrade` changed the lock again")
        self.results.facts["anchor_changes"] = lock_changes(self.old_lock, new_lock)
        if timed:
            self.record(("lock", lock), ("sync", sync), ("lock-again", again))
            self.results.get("anchor").wall.append(lock.wall_s + sync.wall_s)

    def unit_bounded(self, timed: bool) -> None:
        self.reset_anchor()
        lock = self.uv(self.anchor, "lock", "--quiet", *[f"--upgrade-package={r}" for r in self.requests])
        self.results.facts["bounded_changes"] = lock_changes(
            self.old_lock, (self.anchor / "uv.lock").read_text()
        )
        sync = self.sync(self.anchor)
        if timed:
            self.record(("bounded-lock", lock), ("bounded-sync", sync))
            self.results.get("bounded").wall.append(lock.wall_s + sync.wall_s)

    def unit_parts(self, timed: bool) -> None:
        verify = self.run("verify", [self.tools.venvkeeper, "verify", "--env", str(self.env_path)], self.work)
        check = self.uv(self.project, "lock", "--check", "--offline", "--quiet")
        python = str(self.env_path / "bin" / "python")
        self.counter += 1
        stage, fresh = self.work / f"stage-{self.counter:03d}", self.work / "fresh"
        self.copy_tracked(stage)
        runs = [("verify", verify), ("lock-check", check)]
        for key, where in (("fresh-sync-new", stage), ("fresh-sync-fixed", self.anchor)):
            shutil.rmtree(fresh, ignore_errors=True)
            env = {**self.env, "UV_PROJECT_ENVIRONMENT": str(fresh)}
            runs.append(
                (key, self.run("uv sync", [self.tools.uv, *CANDIDATE_SYNC, "--python", python], where, env))
            )
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)
        if timed:
            self.record(*runs)

    def copy_tracked(self, dest: Path) -> None:
        """The project's tracked files at ``dest``, as venvkeeper's staging copy is made."""
        listed = self.git(self.project, "ls-files", "-z")
        for name in filter(None, listed.split("\0")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.project / name, dest / name)

    def record(self, *runs: tuple[str, Run]) -> None:
        for key, result in runs:
            self.results.get(key).wall.append(result.wall_s)


# key -> the command (shown as code) and what it is
LABELS = {
    "update": ("venvkeeper update $R --env $E --policy patch --test-command true --json", "(updated)"),
    "anchor": ("uv lock --upgrade + uv sync", ""),
    "lock": ("uv lock --upgrade", ""),
    "sync": ("uv sync --frozen --no-dev --no-editable", "(after it)"),
    "bounded": ("uv lock --upgrade-package ... + uv sync", "(venvkeeper's bounded requests)"),
    "bounded-lock": ("uv lock --upgrade-package NAME<BOUND ...", "(venvkeeper's bounded requests)"),
    "bounded-sync": ("uv sync --frozen --no-dev --no-editable", "(after it)"),
    "noop": ("venvkeeper update $R --env $E --policy patch --test-command true --json", "(no-updates)"),
    "update-slow": (
        "venvkeeper update $R --env $E --policy patch --test-command 'sleep 2' --json",
        "(updated), less its test runs: the generation is built while the baseline's tests run",
    ),
    "lock-again": ("uv lock --upgrade", "(the lock already current)"),
    "verify": ("venvkeeper verify --env $E", ""),
    "lock-check": ("uv lock --check --offline", ""),
    "fresh-sync-new": (
        "uv sync --frozen --all-packages --no-editable --group dev",
        "(a new env, from a fresh copy of the tracked files, as the baseline candidate)",
    ),
    "fresh-sync-fixed": ("uv sync --frozen --all-packages --no-editable --group dev", "(a new env, from $A)"),
}


def shown(key: str) -> str:
    """A command's label in the report: the command as code, then what it is."""
    command, what = LABELS[key]
    return f"`{command}` {what}".rstrip()


def measure(tools: Tools, work: Path, results: Results) -> None:
    for key, (command, what) in LABELS.items():
        results.add(key, f"{command} {what}".rstrip())
    bench = Bench(tools, work, results)
    print(
        "setup: the project, its remote, the old lock and its deploy (not timed)", file=sys.stderr, flush=True
    )
    bench.setup()
    results.facts["requests"] = bench.requests
    units: list[Callable[[bool], None]] = [
        bench.unit_venvkeeper,
        bench.unit_anchor,
        bench.unit_bounded,
        bench.unit_parts,
        bench.unit_slow_tests,
    ]
    print("warm-up round (fills uv's cache; not timed)", file=sys.stderr, flush=True)
    for unit in units:
        unit(False)
    for i in range(results.rounds):
        for unit in benchlib.rotated(i, units):
            unit(True)
        last = "  ".join(
            f"{k}={results.get(k).wall[-1] * 1000:.0f}ms" for k in ("update", "anchor", "noop", "lock-again")
        )
        benchlib.progress("update", i, results.rounds, last)


# --------------------------------------------------------------------------- report


def step_median(results: Results, outcome: str, step: str) -> float | None:
    values = [d[step] for d in results.durations.get(outcome, []) if step in d]
    return statistics.median(values) if values else None


def without_tests(results: Results) -> Series:
    """venvkeeper's updated runs, wall time less the test command's own time."""
    s = results.get("update")
    tests = [d.get("tests", 0.0) for d in results.durations.get("updated", [])]
    return Series(s.label + " less tests", [w - t for w, t in zip(s.wall, tests, strict=True)])


CYCLE_ROWS = ("update", "anchor", "lock", "sync", "update-slow", "bounded", "bounded-lock", "bounded-sync")
NOOP_ROWS = ("noop", "lock-again")
PART_ROWS = ("verify", "lock-check", "fresh-sync-new", "fresh-sync-fixed")
HEADERS = ["command", "median ms", "range ms", "of which in-process ms", "÷ anchor", "target", "met"]


def row(results: Results, key: str, anchor: str | None, target: str = "", within: str = "") -> list[str]:
    s = results.get(key)
    ratio = benchlib.ratio_cell(s, results.get(anchor)) if anchor else ""
    kind = "anchor" if key in ("anchor", "lock-again") else "(informational)"
    return [
        shown(key),
        ms(s.median),
        f"{ms(min(s.wall))}-{ms(max(s.wall))}",
        ms(s.internal_median),
        ratio,
        target or kind,
        within,
    ]


def met(results: Results) -> tuple[bool, float, float]:
    """Whether the cycle less the tests is within TARGET x the anchor; the ratios of medians with and
    without the tests."""
    update, anchor = results.get("update"), results.get("anchor")
    less = without_tests(results).median / anchor.median
    return less <= TARGET, less, update.median / anchor.median


def rows(results: Results) -> list[list[str]]:
    ok, _, _ = met(results)
    out = [row(results, "update", "anchor", f"<= {TARGET:g}x (less tests)", "yes" if ok else "no")]
    out += [row(results, k, "anchor" if k in ("bounded", "update-slow") else None) for k in CYCLE_ROWS[1:]]
    out += [row(results, k, "lock-again" if k == "noop" else None) for k in NOOP_ROWS]
    out += [row(results, k, None) for k in PART_ROWS]
    return out


def verdict(results: Results) -> str:
    ok, less, raw = met(results)
    u, a = results.get("update"), results.get("anchor")
    tests = step_median(results, "updated", "tests") or 0.0
    return (
        f"**Target, the whole cycle without the test run within {TARGET:g}x (`uv lock --upgrade` + warm "
        f"`uv sync`): {'met' if ok else 'not met'}** ({less:.2f}x: venvkeeper's median {ms(u.median)} ms "
        f"less its test runs ({ms(tests)} ms median) over the anchor's {ms(a.median)} ms; with the test "
        f"runs {raw:.2f}x, round by round {benchlib.paired_ratio(u, a):.2f}x; {len(u.wall)} rounds)."
    )


BREAKDOWN_HEADERS = ["step", "updated: median ms", "no-updates: median ms", "what it runs"]


def breakdown_rows(results: Results) -> list[list[str]]:
    out = []
    for step in STEPS:
        a, b = step_median(results, "updated", step), step_median(results, "no-updates", step)
        if a is None and b is None:
            continue
        out.append([step, ms(a), ms(b), STEP_WHAT[step]])
    out.append(
        [
            "other",
            ms(other(results, "updated")),
            ms(other(results, "no-updates")),
            "backup, lock parse and diff, history, clean-up (total less the steps)",
        ]
    )
    out.append(
        [
            "total",
            ms(step_median(results, "updated", "total")),
            ms(step_median(results, "no-updates", "total")),
            "`durations.total`",
        ]
    )
    out.append(
        [
            "outside",
            ms(results.get("update").median - (results.get("update").internal_median or 0.0)),
            ms(results.get("noop").median - (results.get("noop").internal_median or 0.0)),
            "start-up, imports, output, exit (wall median less `total` median)",
        ]
    )
    return out


def other(results: Results, outcome: str) -> float | None:
    runs = results.durations.get(outcome, [])
    if not runs:
        return None
    return statistics.median(d["total"] - sum(d.get(s, 0.0) for s in STEPS) for d in runs)


def observations(results: Results) -> list[str]:
    if results.error:
        return list(results.notes)
    out = list(results.notes)
    f = results.facts
    out.append(f"the old state: {', '.join(f.get('old_changes', []))} (one commit behind the example's lock)")
    vk = vk_changes(results.payloads.get("updated", {}))
    out.append(f"venvkeeper's changes (patch policy): {', '.join(vk) or 'none'}")
    anchor, bounded = f.get("anchor_changes", []), f.get("bounded_changes", [])
    same = "the same" if sorted(anchor) == vk else "different: " + ", ".join(anchor)
    bounded_same = "the same" if sorted(bounded) == vk else ", ".join(bounded)
    out.append(
        f"`uv lock --upgrade`'s changes are {same}; the bounded `uv lock --upgrade-package` "
        f"({len(f.get('requests', []))} requests) made {bounded_same}"
    )
    tested = f.get("tested_live", [])
    out.append(
        f"in {sum(tested)} of {len(tested)} updated runs the live generation's record names the "
        "environment the tests ran in (`built.tested_in`): it was switched to, not built again"
    )
    note = (results.payloads.get("updated", {}).get("notification") or {}).get("skipped")
    out.append(f"mail: {note}")
    med = {k: step_median(results, "updated", k) or 0.0 for k in (*STEPS, "total")}
    lock, sync = results.get("lock").median, results.get("sync").median
    out.append(
        f"venvkeeper's relock ({ms(med['relock'])} ms) against `uv lock --upgrade` ({ms(lock)} ms) and the "
        f"bounded `uv lock --upgrade-package` ({ms(results.get('bounded-lock').median)} ms)"
    )
    out.append(
        f"venvkeeper builds one generation (generation {ms(med['generation'])} ms: `uv sync --inexact` into "
        f"a clone of the live one, then the smoke check importing the application, as every deploy of that "
        f"change does) and two test environments as hard-link clones (candidate {ms(med['candidate'])} ms), "
        f"then switches to the generation the tests ran on (deploy {ms(med['deploy'])} ms), against one "
        f"incremental `uv sync` ({ms(sync)} ms) that compiles nothing. For comparison, a sync into a new "
        f"environment from a new copy takes {ms(results.get('fresh-sync-new').median)} ms, from a fixed "
        f"path {ms(results.get('fresh-sync-fixed').median)} ms"
    )
    out.append(
        f"preflight ({ms(med['preflight'])} ms) includes `venvkeeper verify --env` (whole command "
        f"{ms(results.get('verify').median)} ms) and `uv lock --check --offline` "
        f"({ms(results.get('lock-check').median)} ms)"
    )
    noop = {k: step_median(results, "no-updates", k) or 0.0 for k in ("candidate", "relock", "total")}
    out.append(
        f"the no-update run still clones the baseline's environment ({ms(noop['candidate'])} ms of its "
        f"{ms(noop['total'])} ms) beside its relock ({ms(noop['relock'])} ms), which finds nothing to do"
    )
    return out


def markdown(results: Results, machine: Mapping[str, str], command: str) -> str:
    python_note = f"`$PY` = `{machine['python_path']}`, given to `venvkeeper deploy` and `uv sync`"
    requests = results.facts.get("requests") or ["NAME<BOUND"]
    first, count = requests[0], len(results.facts.get("requests") or [])
    out = [
        *benchlib.section_head(SECTION, command, machine, python_note, f", {machine['git']}"),
        "",
        benchlib.ratio_legend("venvkeeper's", "venvkeeper"),
        "",
    ]
    if results.error:
        out += benchlib.failed_block("Failed.", results.error)
    else:
        out += benchlib.table_block(HEADERS, rows(results), verdict(results))
        out += [
            "### Where venvkeeper's time goes",
            "",
            "Medians of the `durations` venvkeeper reports in its JSON, per step (ms), over the timed runs.",
            "",
            *benchlib.table_lines(BREAKDOWN_HEADERS, breakdown_rows(results)),
            "",
        ]
    out += [
        "### Commands",
        "",
        f"{results.rounds} rounds. `$R` is a git repository (branch `main`, a bare `origin` in the work dir, "
        "upstream set) holding the tracked files of `examples/webapp` with the `[tool.venvkeeper.hooks]` "
        "table removed (uv runs no hooks), committed, then re-locked with "
        + ", ".join(f"`{n}=={v}`" for n, v in OLDER.items())
        + " (`uv lock --upgrade-package`; each an older patch release) and committed again: the old "
        "state. `$E` is the environment `venvkeeper deploy $R --env $E --python $PY` made of it. `$A` is "
        "a clone of the old state whose `.venv` uv syncs. Every command runs with a bench-owned "
        "`UV_CACHE_DIR` and `UV_PYTHON_DOWNLOADS=never`; no mail is configured. The registry is public "
        "PyPI: uv's index requests (or its cached answers) are part of both tools' times.",
        "",
        "```sh",
        "# venvkeeper (after: git reset --hard OLD; git push -f origin OLD:main; venvkeeper rollback --to G)",
        "venvkeeper update $R --env $E --policy patch --test-command true --json   # updated",
        "venvkeeper update $R --env $E --policy patch --test-command true --json   # no-updates",
        "# informational (after the same reset); its wall time less the test runs it reports",
        "venvkeeper update $R --env $E --policy patch --test-command 'sleep 2' --json",
        "# the anchor, in $A (after: the old uv.lock written back; uv sync)",
        "uv lock --upgrade && " + " ".join(("uv", *UV_SYNC, "--python", "$PY")),
        "uv lock --upgrade                                                         # lock already current",
        "# informational, in $A (after the same reset)",
        f"uv lock --upgrade-package '{first}' ... ({count} requests) && "
        + " ".join(("uv", *UV_SYNC, "--python", "$PY")),
        "venvkeeper verify --env $E",
        "uv lock --check --offline                                                 # in $R",
        "UV_PROJECT_ENVIRONMENT=$NEW uv " + " ".join(CANDIDATE_SYNC) + " --python $E/bin/python",
        "```",
        "",
        "A round is five units in turn, rotated from round to round: venvkeeper's two runs; the anchor's "
        "three commands; the bounded lock and its sync; the informational commands; the update with a "
        "test run. Before the rounds one "
        "untimed round fills uv's cache. The resets between units are not timed. Run-to-run noise on this "
        "machine is large; compare ratios from the same run.",
        "",
        *benchlib.observation_lines(observations(results)),
    ]
    if not results.error:
        out += benchlib.all_rounds_lines((shown(key), s) for key, s in results.series.items())
    return "\n".join(out)


def print_results(results: Results) -> None:
    if results.error:
        print(f"FAILED:\n{results.error}\n")
        return
    print(benchlib.text_table(HEADERS, rows(results)), "", verdict(results), "", sep="\n")
    print(benchlib.text_table(BREAKDOWN_HEADERS, breakdown_rows(results)), "", sep="\n")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds (default 7)")
    benchlib.add_common_options(parser, "update", python_help="interpreter given to deploy and uv sync")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = {**tools.machine(), "git": benchlib.capture(["git", "--version"])}
    results = Results(args.rounds)

    def body() -> None:
        try:
            measure(tools, work, results)
        except BenchError as exc:
            results.error = str(exc)
            print(f"FAILED: {exc}", file=sys.stderr)

    benchlib.measure(body, tools, machine, work, keep_work=args.keep_work)
    print_results(results)
    benchlib.conclude(
        observations(results),
        args.write,
        "update_bench.py",
        argv,
        SECTION,
        lambda command: markdown(results, machine, command),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
