"""One member's code changed on a real project of the e2e corpus (issue 14): ``venvkeeper deploy``
against ``uv sync --reinstall-package M`` into its existing environment.

    python bench/corpus_bench.py [--project flask] [--rounds N] [--write BENCHMARKS.md]

Setup (not timed): the project's sdist, pinned by sha256 in tests/support/corpus.py, is fetched
into the e2e suite's cache (once) and committed to a new git repository, tagged where its version
comes from a tag, as the e2e suite does; a copy of that repository serves uv (so uv's in-tree builds
never touch venvkeeper's input). One deploy and one ``uv sync`` build every member, then one
untimed round. Each round appends a comment line to one file of member M in both copies (not
committed: venvkeeper reads the working tree, and a version derived from git stays the tag's), then
times ``venvkeeper deploy --keep 1`` into its existing ``--env`` and ``uv sync --frozen
--all-packages --no-default-groups --no-editable --reinstall-package M`` into its existing
environment, in rotated order; after each run the installed copy of the file must hold the round's
comment. The script reports; it never fails on a ratio.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

import benchlib
import changelib
from changelib import UV_SYNC, Comparison, MemberChange

PROG = "corpus_bench"
SECTION = "## one member changed, a real project of the e2e corpus (issue 14)"
TARGET = 1.5


def measure(change: MemberChange, comparison: Comparison) -> None:
    vk, uv = change.first_deploys()
    comparison.notes += changelib.project_facts(change)
    comparison.notes.append(
        f"first deploy {vk.wall_s:.1f} s, first sync {uv.wall_s:.1f} s (every member built; not timed)"
    )
    change.measure(comparison)


def markdown(
    comparison: Comparison, change: MemberChange | None, machine: Mapping[str, str], command: str
) -> str:
    python_note = f"`$PY` = `{machine['python_path']}`, given to both tools"
    member = change.member if change else "M"
    groups = "".join(f" --group {g}" for g in change.groups) if change else ""
    out = [
        *benchlib.section_head(SECTION, command, machine, python_note),
        "",
        *changelib.table_section([comparison]),
        "### Commands",
        "",
        "`$P` is the corpus project's pinned sdist committed to a new git repository (as the e2e suite "
        "does), `$P2` a copy of it for uv. Each round appends a comment line to one file of member "
        f"`{member}` in both (not committed), then runs, first command rotating "
        f"({comparison.rounds} rounds, after one untimed round):",
        "",
        "```sh",
        f"venvkeeper deploy $P --env $E --python $PY{groups} --keep 1 --json    # $E: deployed before",
        f"UV_PROJECT_ENVIRONMENT=$UVENV uv {' '.join(UV_SYNC)}{groups} --reinstall-package {member} "
        "--project $P2 --python $PY   # synced before",
        "```",
        "",
        "Every command runs with one bench-owned `UV_CACHE_DIR` and `UV_PYTHON_DOWNLOADS=never`. "
        "The uv flags are what a deploy installs (README: runtime dependencies of every member, no "
        "default groups), non-editable as venvkeeper installs members.",
        "",
        benchlib.ROUNDS_NOTE,
        "",
        *changelib.tail_section([comparison]),
    ]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    changelib.add_project_options(parser, "flask")
    benchlib.add_common_options(parser, "corpus", python_help="interpreter given to both tools")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG, vk_python=False)
    machine = tools.machine()
    title = f"one member changed, {args.project}"
    comparison = Comparison("member", title, args.rounds, TARGET)
    changes: list[MemberChange] = []

    def body(c: Comparison) -> None:
        changes.append(changelib.member_change(tools, work, args, keep=1))
        measure(changes[0], c)

    print(f"{title}:", file=sys.stderr)
    benchlib.measure(
        lambda: changelib.attempt(comparison, body), tools, machine, work, keep_work=args.keep_work
    )
    changelib.print_comparisons([comparison])
    benchlib.conclude(
        [],
        args.write,
        "corpus_bench.py",
        argv,
        SECTION,
        lambda command: markdown(comparison, changes[0] if changes else None, machine, command),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
