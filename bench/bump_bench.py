"""One locked package bumped (issue 14): ``venvkeeper deploy`` against uv's incremental ``uv sync``
into its existing environment, on examples/webapp, when the lock changes one third-party package's
version.

    python bench/bump_bench.py [--rounds N] [--bump NAME==VERSION] [--write BENCHMARKS.md]

Setup (not timed): the deploy benchmark's copy of examples/webapp (hooks table removed, committed
to a new git repository); a second lock made from it with ``uv lock --upgrade-package
NAME==VERSION`` (default ``idna==3.19``; the example locks 3.20), checked to differ from the first
in that one package only; one deploy and one ``uv sync`` into their environments, then one untimed
round. Each round switches ``uv.lock`` to the other version and commits it, then times, in rotated
order: ``venvkeeper deploy --keep 1`` into its existing ``--env``; ``uv sync`` into its existing
environment (the issue's anchor); and, informational, ``uv sync`` into a new environment with the
warm cache (what a whole new environment costs uv). After every run the installed version of the
package is checked. The script reports; it never fails on a ratio.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import benchlib
import changelib
from benchlib import BenchError, Tools, bench_env
from changelib import UV_SYNC, Comparison
from deploy_bench import Bench, Series, git
from update_bench import lock_changes

PROG = "bump_bench"
SECTION = "## one locked package bumped (issue 14)"
TARGET = 1.5


def parse_bump(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME==VERSION")
    return match.group(1).lower(), match.group(2)


def installed_version(env_path: Path, name: str) -> str:
    """The version of ``name`` installed in the environment (from its .dist-info directory)."""
    pattern = re.compile(rf"{re.escape(name).replace('-', '[-_]')}-(.+)\.dist-info", re.IGNORECASE)
    found = [
        m.group(1) for d in changelib.site_packages(env_path).iterdir() if (m := pattern.fullmatch(d.name))
    ]
    return ",".join(found) or "-"


class BumpBench:
    def __init__(self, tools: Tools, work: Path, package: str, version: str) -> None:
        self.tools, self.work = tools, work
        self.package, self.version = package, version
        self.base = Bench(tools, work)  # deploy_bench's copy of examples/webapp
        self.project = self.base.project
        self.env = bench_env(work / "uv-cache")
        self.vk_env, self.uv_env = work / "envs" / "vk" / ".venv", work / "envs" / "uv" / ".venv"
        self.locks: list[tuple[str, str]] = []  # (version of the package, uv.lock text)
        self.fresh_count = 0
        self.rebuilt: set[str] = set()  # venvkeeper's `rebuilt` (members), per round

    def prepare(self) -> list[str]:
        """The project, its two locks (the second checked to differ in the package only) and the
        first deploy and sync; what to note."""
        self.base.prepare_project()
        lock = self.project / "uv.lock"
        original = lock.read_text()
        argv = [self.tools.uv, "lock", "--quiet", f"--upgrade-package={self.package}=={self.version}"]
        result = benchlib.run(
            [*argv, "--project", str(self.project), "--python", self.tools.python], self.env, self.work
        )
        if result.returncode != 0:
            raise benchlib.failure("uv lock --upgrade-package", result)
        bumped = lock.read_text()
        changes = lock_changes(original, bumped)
        if len(changes) != 1 or not changes[0].startswith(f"{self.package} "):
            raise BenchError(
                f"{self.package}=={self.version} changes the lock in {changes or 'nothing'}, not one"
            )
        before = changes[0].split(" ")[1]
        self.locks = [(before, original), (self.version, bumped)]
        lock.write_text(original)
        for path in (self.vk_env, self.uv_env):
            path.parent.mkdir(parents=True)
        vk, _ = changelib.vk_deploy(self.tools, self.project, self.vk_env, self.env)
        uv = changelib.uv_sync(self.tools, self.project, self.uv_env, self.env, UV_SYNC)
        return [
            f"the lock flips between {self.package} {before} and {self.version} ({changes[0]}; "
            "`uv lock --upgrade-package` made the second lock once, untimed)",
            f"first deploy {vk.wall_s:.1f} s, first sync {uv.wall_s:.1f} s (not part of the timings)",
        ]

    def switch(self, index: int) -> str:
        """uv.lock set to ``self.locks[index]`` and committed; the package's version in it."""
        version, text = self.locks[index]
        (self.project / "uv.lock").write_text(text)
        git(self.project, "commit", "-q", "-am", f"bench: {self.package} {version}")
        return version

    def check(self, env_path: Path, version: str, what: str) -> None:
        found = installed_version(env_path, self.package)
        if found != version:
            raise BenchError(
                f"{what}: {self.package} {found} installed in {env_path}, the lock says {version}"
            )

    def fresh(self) -> Path:
        self.fresh_count += 1
        return self.work / "envs" / f"new-{self.fresh_count:03d}" / ".venv"

    def one_round(self, index: int, order: int, series: Mapping[str, Series]) -> None:
        """The lock switched to ``locks[index]``; every command once (rotated by ``order``)."""
        version = self.switch(index)
        new_env = self.fresh()

        def do_vk() -> None:
            result, payload = changelib.vk_deploy(
                self.tools, self.project, self.vk_env, self.env, "--keep", "1"
            )
            if not payload.get("changed"):
                raise BenchError(f"the deploy after the lock changed reported no change:\n{result.stdout}")
            self.check(self.vk_env, version, "venvkeeper deploy")
            series["vk"].wall.append(result.wall_s)
            series["vk"].internal.append(float(payload["duration_s"]))
            self.rebuilt.add(",".join(payload.get("rebuilt") or []) or "none")

        def do_uv() -> None:
            result = changelib.uv_sync(self.tools, self.project, self.uv_env, self.env, UV_SYNC)
            self.check(self.uv_env, version, "uv sync")
            series["uv"].wall.append(result.wall_s)

        def do_new() -> None:
            result = changelib.uv_sync(self.tools, self.project, new_env, self.env, UV_SYNC)
            self.check(new_env, version, "uv sync (new env)")
            series["new"].wall.append(result.wall_s)

        def do_check() -> None:
            argv = [self.tools.uv, "lock", "--check", "--offline", "--quiet", "--python", self.tools.python]
            result = benchlib.run([*argv, "--project", str(self.project)], self.env, self.work)
            if result.returncode != 0:
                raise benchlib.failure("uv lock --check --offline", result)
            series["check"].wall.append(result.wall_s)

        for step in benchlib.rotated(order, [do_vk, do_uv, do_new, do_check]):
            step()
        shutil.rmtree(new_env.parent, ignore_errors=True)

    def measure(self, comparison: Comparison) -> None:
        comparison.notes += self.prepare()
        series = {
            "vk": Series("venvkeeper deploy --keep 1 (existing --env)"),
            "uv": Series("uv sync, existing env"),
            "new": Series("uv sync, new env (warm cache)"),
            "check": Series("uv lock --check --offline"),
        }
        self.one_round(1, 0, series)  # untimed: page cache, uv's download of the other version
        for s in series.values():
            s.wall.clear()
            s.internal.clear()
        for i in range(comparison.rounds):
            self.one_round(i % 2, i, series)
            changelib.round_done("bump", i, comparison.rounds, series)
        comparison.venvkeeper = series["vk"]
        comparison.anchors = [series["uv"], series["new"], series["check"]]
        comparison.notes.append(f"venvkeeper `rebuilt` per round: {' / '.join(sorted(self.rebuilt))}")
        comparison.notes.append(
            f"after every run the installed {self.package} was the lock's version (both tools, every round)"
        )


# --------------------------------------------------------------------------- report


def markdown(comparison: Comparison, machine: Mapping[str, str], command: str, bump: str) -> str:
    python_note = f"`$PY` = `{machine['python_path']}`, given to both tools"
    out = [
        *benchlib.section_head(SECTION, command, machine, python_note),
        "",
        *changelib.table_section([comparison]),
        "### Commands",
        "",
        "`$W` is the deploy benchmark's copy of `examples/webapp` (hooks table removed, committed to a "
        f"new git repository). Setup makes a second lock with `uv lock --upgrade-package {bump}` and "
        "checks that it differs from the example's in that package only. Each round writes the other "
        f"lock into `$W/uv.lock` and commits it ({comparison.rounds} rounds, after one untimed round), "
        "then runs, first command rotating:",
        "",
        "```sh",
        "venvkeeper deploy $W --env $E --python $PY --json --keep 1          # $E: deployed before",
        f"UV_PROJECT_ENVIRONMENT=$UVENV uv {' '.join(UV_SYNC)} --project $W --python $PY   # synced before",
        f"UV_PROJECT_ENVIRONMENT=$NEW uv {' '.join(UV_SYNC)} --project $W --python $PY     # a new path",
        "uv lock --check --offline --quiet --python $PY --project $W",
        "```",
        "",
        "Every command runs with one bench-owned `UV_CACHE_DIR` and `UV_PYTHON_DOWNLOADS=never`. The "
        "issue's anchor is the sync into the existing environment (uv swaps the one package); the sync "
        "into a new environment shows what a whole environment costs uv with a warm cache, and `uv lock "
        "--check --offline` is the check venvkeeper runs when the lock changed (its own argv, in its "
        "staging copy).",
        "",
        benchlib.ROUNDS_NOTE,
        "",
        *changelib.tail_section([comparison]),
    ]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument(
        "--bump",
        type=parse_bump,
        default=parse_bump("idna==3.19"),
        metavar="NAME==VERSION",
        help="the package and the other version the lock flips to (default idna==3.19)",
    )
    benchlib.add_common_options(parser, "bump", python_help="interpreter given to both tools")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG, vk_python=False)
    machine = tools.machine()
    package, version = args.bump
    comparison = Comparison("bump", "one locked package bumped", args.rounds, TARGET)
    bench = BumpBench(tools, work, package, version)
    print(f"{comparison.title} ({package} <-> {version}):", file=sys.stderr)
    benchlib.measure(
        lambda: changelib.attempt(comparison, bench.measure), tools, machine, work, keep_work=args.keep_work
    )
    changelib.print_comparisons([comparison])
    benchlib.conclude(
        [],
        args.write,
        "bump_bench.py",
        argv,
        SECTION,
        lambda command: markdown(comparison, machine, command, f"{package}=={version}"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
