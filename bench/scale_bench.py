"""Scale (issue 14): on a real project with 100+ locked packages, one member's code changed
(``venvkeeper deploy`` against ``uv sync --reinstall-package M`` into its existing environment) and
the disk each extra generation adds.

    python bench/scale_bench.py [--project mcp] [--rounds N] [--write BENCHMARKS.md]

The project is a pinned sdist of the e2e corpus (tests/support/corpus.py; default mcp 2.3.0, a
16-member workspace locking 134 packages), set up and changed as bench/corpus_bench.py does, except
that every deploy runs with ``--keep`` large enough to keep every generation: after the first
deploy and ``1 + N`` member-change deploys (one untimed round, N timed), the environment has
``N + 2`` generations. Then it counts the bytes of the generations, each inode once (a file hard-
linked into several generations, or from one generation into another, is counted once): one
generation alone (the live one, with its files beside it in ``generations/``), all of them
together, and so what each extra generation adds, as a percentage of one. The script reports; it
never fails on a ratio or a percentage.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
import changelib
from changelib import UV_SYNC, Comparison, Disk, MemberChange, disk_usage, mib

PROG = "scale_bench"
SECTION = "## scale: a real project with 100+ locked packages (issue 14)"
TARGET = 1.5
DISK_TARGET = 10.0  # % of one generation, per extra generation


@dataclass
class DiskReport:
    """The generations' disk after the rounds (``rows`` for the table) and what to note."""

    rows: list[list[str]] = field(default_factory=list)
    per_generation: list[float] = field(default_factory=list)  # % of one, each extra generation
    mean_percent: float | None = None
    notes: list[str] = field(default_factory=list)


def generations(env_path: Path) -> tuple[Path, list[Path]]:
    """The live generation (where ``--env`` points) and every generation directory beside it."""
    live = env_path.resolve()
    found = sorted(p for p in live.parent.iterdir() if p.is_dir() and not p.is_symlink())
    return live, found


def with_sidecars(generation: Path) -> list[Path]:
    """A generation directory and the files beside it named after it (its record, its manifest)."""
    return [generation, *sorted(generation.parent.glob(f"{generation.name}.*"))]


def disk_row(what: str, disk: Disk, one: Disk | None) -> list[str]:
    percent = f"{100 * disk.allocated / one.allocated:.1f} %" if one else ""
    return [what, str(disk.files), mib(disk.size), mib(disk.allocated), percent]


def du_bytes(path: Path) -> str:
    """``du -s -B1`` of ``path`` (a cross-check of ``disk_usage``), or why not."""
    proc = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=False)
    return proc.stdout.split()[0] if proc.returncode == 0 and proc.stdout else f"du failed: {proc.stderr}"


def measure_disk(change: MemberChange, state_before: Disk) -> DiskReport:
    """The table of the generations' bytes (see the module docstring)."""
    report = DiskReport()
    live, gens = generations(change.vk_env)
    one = disk_usage(with_sidecars(live))
    everything = disk_usage([live.parent])
    extra = len(gens) - 1
    added = Disk(
        everything.size - one.size, everything.allocated - one.allocated, everything.files - one.files
    )
    per = Disk(added.size // max(extra, 1), added.allocated // max(extra, 1), added.files // max(extra, 1))
    for k in range(1, len(gens)):
        before = disk_usage([p for g in gens[:k] for p in with_sidecars(g)])
        upto = disk_usage([p for g in gens[: k + 1] for p in with_sidecars(g)])
        report.per_generation.append(100 * (upto.allocated - before.allocated) / one.allocated)
    state = live.parent.parent
    state_after = disk_usage([state])
    grown = Disk(
        state_after.size - state_before.size,
        state_after.allocated - state_before.allocated,
        state_after.files - state_before.files,
    )
    deploys = len(change.generations)
    report.rows = [
        disk_row(f"one generation (the live one, `{live.name}`, and its record)", one, None),
        disk_row(f"all {len(gens)} generations together (`generations/`)", everything, one),
        disk_row(f"per extra generation (mean of {extra})", per, one),
        disk_row(
            f"`{state.name}/` grown per member-change deploy (mean of {deploys})",
            per_deploy(grown, deploys),
            one,
        ),
        disk_row("uv's environment (reference)", disk_usage([change.uv_env]), one),
    ]
    if extra:
        report.mean_percent = 100 * per.allocated / one.allocated
    report.notes += [
        "each extra generation, in order (allocated bytes it adds, % of one generation): "
        + ", ".join(f"{p:.1f} %" for p in report.per_generation),
        f"what the live generation `{live.name}` does not share with the earlier ones (allocated): "
        + own_files(gens),
        f"cross-check: `du -s -B1 generations/` = {du_bytes(live.parent)} bytes; counted here: "
        f"{everything.allocated} bytes allocated",
    ]
    if extra != deploys:
        report.notes.append(
            f"{deploys + 1} deploys left {len(gens)} generations (--keep {change.keep}): some were pruned"
        )
    return report


def inode_keys(paths: Sequence[Path]) -> set[tuple[int, int]]:
    """Every (st_dev, st_ino) under ``paths``."""
    keys: set[tuple[int, int]] = set()
    for root in paths:
        for here, dirs, names in os.walk(root):
            for name in dirs + names:
                st = os.lstat(os.path.join(here, name))
                keys.add((st.st_dev, st.st_ino))
        if root.exists():
            st = os.lstat(root)
            keys.add((st.st_dev, st.st_ino))
    return keys


def own_files(gens: Sequence[Path]) -> str:
    """What the last generation holds that no earlier one shares (its own inodes): allocated bytes
    by kind (bytecode; a top-level name in site-packages; another top-level directory; the record files
    beside it), largest first."""
    seen = inode_keys([p for g in gens[:-1] for p in with_sidecars(g)])
    live = gens[-1]
    kinds: dict[str, int] = {}
    for here, dirs, names in os.walk(live):
        for name in dirs + names:
            path = Path(here, name)
            st = os.lstat(path)
            if (st.st_dev, st.st_ino) in seen:
                continue
            parts = path.relative_to(live).parts
            if "__pycache__" in parts:
                kind = "bytecode (`__pycache__/`)"
            elif "site-packages" in parts[:-1]:
                kind = f"site-packages/{parts[parts.index('site-packages') + 1]}"
            else:
                kind = f"{parts[0]}/"
            kinds[kind] = kinds.get(kind, 0) + st.st_blocks * 512
    for sidecar in with_sidecars(live)[1:]:
        kinds[f"`{sidecar.name}`"] = disk_usage([sidecar]).allocated
    ranked = sorted(kinds.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{kind} {mib(n)} MiB" for kind, n in ranked[:8])
    rest = sum(n for _, n in ranked[8:])
    return shown + (f", the rest {mib(rest)} MiB" if rest else "")


def per_deploy(disk: Disk, deploys: int) -> Disk:
    n = max(deploys, 1)
    return Disk(disk.size // n, disk.allocated // n, disk.files // n)


def measure(change: MemberChange, comparison: Comparison, disk: list[DiskReport]) -> None:
    vk, uv = change.first_deploys()
    comparison.notes += changelib.project_facts(change)
    comparison.notes.append(
        f"first deploy {vk.wall_s:.1f} s, first sync {uv.wall_s:.1f} s (every member built; not timed)"
    )
    state_before = disk_usage([change.vk_env.resolve().parent.parent])
    change.measure(comparison)
    disk.append(measure_disk(change, state_before))


# --------------------------------------------------------------------------- report


DISK_HEADERS = ["what", "files", "apparent MiB", "allocated MiB", "% of one generation (allocated)"]


def disk_verdict(report: DiskReport) -> str:
    if report.mean_percent is None:
        return "No extra generation was kept: nothing to compare."
    within = "yes" if report.mean_percent <= DISK_TARGET else "no"
    return (
        f"Per extra generation: {report.mean_percent:.1f} % of one generation (target: at most "
        f"{DISK_TARGET:.0f} %; within: {within})."
    )


def markdown(
    comparison: Comparison,
    change: MemberChange | None,
    disk: DiskReport | None,
    machine: Mapping[str, str],
    command: str,
) -> str:
    python_note = f"`$PY` = `{machine['python_path']}`, given to both tools"
    member = change.member if change else "M"
    keep = change.keep if change else "K"
    groups = "".join(f" --group {g}" for g in change.groups) if change else ""
    out = [
        *benchlib.section_head(SECTION, command, machine, python_note),
        "",
        "### Time: one member's code changed",
        "",
        *changelib.table_section([comparison]),
        "### Disk per extra generation",
        "",
        "Bytes under the environment's `generations/` after the rounds, every inode counted once (a "
        "file hard-linked into several generations counts once, as `du -s` over the directory counts "
        "it): apparent = the regular files' sizes, allocated = every inode's blocks (directories "
        "included).",
        "",
    ]
    if disk is not None:
        out += benchlib.table_block(DISK_HEADERS, disk.rows, disk_verdict(disk))
    out += [
        "### Commands",
        "",
        "`$P` is the corpus project's pinned sdist committed to a new git repository (as the e2e suite "
        "does), `$P2` a copy of it for uv. Each round appends a comment line to one file of member "
        f"`{member}` in both (not committed), then runs, first command rotating "
        f"({comparison.rounds} rounds, after one untimed round):",
        "",
        "```sh",
        f"venvkeeper deploy $P --env $E --python $PY{groups} --keep {keep} --json    # $E: deployed before",
        f"UV_PROJECT_ENVIRONMENT=$UVENV uv {' '.join(UV_SYNC)}{groups} --reinstall-package {member} "
        "--project $P2 --python $PY   # synced before",
        "```",
        "",
        f"`--keep {keep}` keeps every generation the rounds build, so no deploy timed here prunes one. "
        "Every command runs with one bench-owned `UV_CACHE_DIR` and `UV_PYTHON_DOWNLOADS=never`.",
        "",
        benchlib.ROUNDS_NOTE,
        "",
    ]
    out += changelib.tail_section([comparison], [f"disk: {n}" for n in disk.notes] if disk else [])
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    changelib.add_project_options(parser, "mcp")
    benchlib.add_common_options(parser, "scale", python_help="interpreter given to both tools")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG, vk_python=False)
    machine = tools.machine()
    title = f"one member changed, {args.project}"
    comparison = Comparison("member", title, args.rounds, TARGET)
    changes: list[MemberChange] = []
    disk: list[DiskReport] = []

    def body(c: Comparison) -> None:
        # Keeps every generation: the untimed round's and the timed rounds' (one more to spare).
        changes.append(changelib.member_change(tools, work, args, keep=args.rounds + 2))
        measure(changes[0], c, disk)

    print(f"scale, {title}:", file=sys.stderr)
    benchlib.measure(
        lambda: changelib.attempt(comparison, body), tools, machine, work, keep_work=args.keep_work
    )
    changelib.print_comparisons([comparison])
    if disk:
        print("\n" + benchlib.text_table(DISK_HEADERS, disk[0].rows), "", disk_verdict(disk[0]), sep="\n")
        for note in disk[0].notes:
            print(f"note: {note}")
    benchlib.conclude(
        [],
        args.write,
        "scale_bench.py",
        argv,
        SECTION,
        lambda command: markdown(
            comparison, changes[0] if changes else None, disk[0] if disk else None, machine, command
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
