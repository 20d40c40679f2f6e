"""Verify benchmark (issue 3): ``venvkeeper verify``'s wall time and hashing throughput.

    python bench/verify_bench.py [--rounds N] [--large-rounds N] [--no-large] [--write BENCHMARKS.md]

Every command is timed as wall-clock time of the whole command (process start to exit), with a warm
page cache (every command runs once, untimed, before the rounds). Two parts:

A. examples/webapp deployed to a temporary ``--env`` (about 900 files, 28 MB): ``verify``,
   ``verify --fast``, ``verify --json`` and ``verify --project examples/webapp``, against anchors run
   in the same rounds: ``python -c pass`` with venvkeeper's own interpreter (the floor of any Python
   command line), the same interpreter importing the modules verify loads (and doing nothing else),
   ``uv pip check`` and ``uv pip list`` (uv's own checks of an environment: names and versions, no
   hashing), and ``find | xargs cat | sha256sum`` over the files verify hashes.
   Target: the whole command within 100 ms.
B. a large environment from PyPI (numpy, pandas, scipy, matplotlib, scikit-learn; about 330 MB):
   verify's throughput (the ``bytes_hashed`` of its JSON over its wall time) against the same
   pipeline's. Target: at least 50 % of the pipeline's. The project, its lock, its uv cache and the
   deployed environment live in ``--large-dir`` and are reused by the next run (``--no-large`` skips
   the part, ``--rebuild-large`` starts it afresh).

The commands run interleaved round by round (the first one rotates every round) so that the
machine's noise falls on all of them alike; the report is the median of the rounds and the ratios
of the medians. Nothing fails on a target: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import benchlib
from benchlib import EXAMPLE, Command, Part, Run, Tools, bench_env, ms, run

PROG = "verify_bench"
SECTION = "## verify (issue 3)"
DEFAULT_LARGE_DIR = Path("/tmp/venvkeeper-bench-large")

TARGET_MS = 100  # A: the whole command, start-up included
TARGET_SHARE = 0.5  # B: verify's throughput over the pipeline's

LARGE_DEPENDENCIES = ["numpy", "pandas", "scipy", "matplotlib", "scikit-learn"]
# Dependencies only: no build system, so the root is virtual and nothing of its own is installed.
LARGE_PYPROJECT = f"""\
# Written by bench/verify_bench.py: the large environment of the verify benchmark.
[project]
name = "verify-bench-large"
version = "0.0.0"
requires-python = ">=3.11"
dependencies = {json.dumps(LARGE_DEPENDENCIES)}
"""

# The modules verify loads outside its run (cli.main -> cli.fastchecks -> argv, render, verify.check ->
# generations.inspection, ..., and verify's renderer once the result is printed): start-up plus these
# imports is what the command costs outside ``duration_s``. threading (the hashing helpers) loads during
# the run, so ``duration_s`` includes it.
VERIFY_IMPORTS = (
    "import venvkeeper.cli.main, venvkeeper.cli.fastchecks, venvkeeper.verify.check, "
    "venvkeeper.cli.render_verify"
)

OURS = ("verify",)  # the kind of venvkeeper's commands: they may exit 1, and get ratio cells


# --------------------------------------------------------------------------- tools and machine


def first_line(text: str) -> str:
    return text.splitlines()[0] if text else "?"


def machine_facts(tools: Tools) -> dict[str, str]:
    """The shared facts about the machine and the tools, plus the hashing tools the anchors use."""
    return {
        **tools.machine(),
        "sha256sum": first_line(benchlib.capture(["sha256sum", "--version"])),
        "openssl": benchlib.capture(["openssl", "version"]).split(" (")[0] if shutil.which("openssl") else "",
    }


# --------------------------------------------------------------------------- running and timing


def digest_printed(cmd: Command, result: Run) -> bool:
    """A pipeline's run is complete only if it printed a digest."""
    return not cmd.key.startswith("pipe") or bool(
        re.match(r"(SHA2-256\(stdin\)= )?[0-9a-f]{64}\b", result.stdout)
    )


def time_rounds(
    name: str, commands: Sequence[Command], rounds: int, env: Mapping[str, str], cwd: Path
) -> None:
    benchlib.time_rounds(
        name, commands, rounds, env, cwd, ours=OURS, json_key="bytes_hashed", check=digest_printed
    )


def regular_files(root: Path) -> tuple[int, int]:
    """(count, bytes) of the regular files under ``root`` outside ``__pycache__``, as find sees them."""
    count, _, total = benchlib.entries(root)
    return count, total


def pipeline(generation: Path, digest: str) -> list[str]:
    find = f"find {shlex.quote(str(generation))} -type f -not -path '*/__pycache__/*' -print0"
    return ["sh", "-c", f"{find} | xargs -0 cat | {digest}"]


PIPE_LABEL = "find $G -type f -not -path '*/__pycache__/*' -print0 | xargs -0 cat | "


# --------------------------------------------------------------------------- the two parts


def verify_commands(tools: Tools, env_path: Path, json_too: bool) -> list[Command]:
    vk, e = tools.venvkeeper, str(env_path)
    cmds = [Command("verify", "venvkeeper verify --env $E", [vk, "verify", "--env", e], "verify")]
    if json_too:
        cmds.append(
            Command(
                "json", "venvkeeper verify --env $E --json", [vk, "verify", "--env", e, "--json"], "verify"
            )
        )
    return cmds


def part_small(tools: Tools, work: Path, rounds: int, part: Part) -> None:
    env_path, env = benchlib.deploy_example(tools, work, part, "A: ")
    generation = env_path.resolve()
    vk, e, py = tools.venvkeeper, str(env_path), tools.vk_python
    verify, as_json = verify_commands(tools, env_path, json_too=True)
    fast = Command(
        "fast", "venvkeeper verify --env $E --fast", [vk, "verify", "--env", e, "--fast"], "verify"
    )
    project = Command(
        "project",
        "venvkeeper verify --env $E --project examples/webapp",
        [vk, "verify", "--env", e, "--project", str(EXAMPLE)],
        "verify",
    )
    for cmd in (verify, fast, as_json):
        cmd.target = f"<= {TARGET_MS} ms"
    project.target = "(informational: runs uv export and git)"
    part.commands = [
        verify,
        fast,
        as_json,
        project,
        benchlib.pass_anchor(py),
        Command("imports", '$PY -c "$IMPORTS"', [py, "-c", VERIFY_IMPORTS], "info"),
        benchlib.uv_pip_anchor(tools, env_path, "check"),
        benchlib.uv_pip_anchor(tools, env_path, "list"),
        Command("pipe", PIPE_LABEL + "sha256sum", pipeline(generation, "sha256sum"), "anchor"),
    ]
    print(f"A: {rounds} rounds of {len(part.commands)} commands", file=sys.stderr, flush=True)
    time_rounds("A", part.commands, rounds, env, work)
    part.facts["generation"] = generation
    part.facts["regular"] = regular_files(generation)


def prepare_large(tools: Tools, large: Path, part: Part) -> Path:
    """The large project, locked and deployed in ``large`` (reused when already there); its --env."""
    project, env_path = large / "project", large / ".venv"
    env = bench_env(large / "uv-cache")
    project.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(project / "src", ignore_errors=True)  # the placeholder package of earlier versions
    pyproject = project / "pyproject.toml"
    changed = not pyproject.exists() or pyproject.read_text() != LARGE_PYPROJECT
    pyproject.write_text(LARGE_PYPROJECT)
    if changed or not (project / "uv.lock").exists():
        print(f"B: locking {project} against PyPI", file=sys.stderr, flush=True)
        result = run([tools.uv, "lock", "--python", tools.python], env, project)
        if result.returncode != 0:
            raise benchlib.failed("uv lock", result)
        part.notes.append(f"the large project was locked for this run (`uv lock`, {result.wall_s:.0f} s)")
    print(f"B: deploying {project} to {env_path} (not timed)", file=sys.stderr, flush=True)
    result, payload = benchlib.deploy(tools, project, env_path, env, "--keep", "0")
    if payload.get("changed"):
        part.notes.append(
            f"the large environment was deployed for this run ({result.wall_s:.0f} s, downloads "
            "included when the uv cache was empty); the next run reuses it"
        )
    else:
        part.notes.append(f"the large environment was reused from an earlier run (`{large}`)")
    return env_path


def part_large(tools: Tools, large: Path, rounds: int, part: Part) -> None:
    env_path = prepare_large(tools, large, part)
    generation = env_path.resolve()
    verify, as_json = verify_commands(tools, env_path, json_too=True)
    part.commands = [
        verify,
        as_json,
        Command("pipe", PIPE_LABEL + "sha256sum", pipeline(generation, "sha256sum"), "anchor"),
    ]
    verify.target = f">= {TARGET_SHARE:.0%} of the pipeline's MB/s"
    if shutil.which("openssl"):
        part.commands.append(
            Command(
                "pipe-openssl",
                PIPE_LABEL + "openssl dgst -sha256",
                pipeline(generation, "openssl dgst -sha256"),
                "info",
            )
        )
    print(f"B: {rounds} rounds of {len(part.commands)} commands", file=sys.stderr, flush=True)
    time_rounds("B", part.commands, rounds, bench_env(large / "uv-cache"), large)
    part.facts["generation"] = generation
    part.facts["regular"] = regular_files(generation)


# --------------------------------------------------------------------------- report


SMALL_ANCHORS = ["pass", "check", "list", "pipe"]
SMALL_HEADERS = benchlib.command_headers(
    "÷ python -c pass", "÷ uv pip check", "÷ uv pip list", "÷ find…sha256sum"
)


def small_rows(part: Part) -> list[list[str]]:
    return benchlib.anchored_rows(part.commands, [part.get(k) for k in SMALL_ANCHORS], OURS, TARGET_MS)


LARGE_HEADERS = benchlib.command_headers("files", "MB", "MB/s", "share of the sha256sum pipeline's MB/s")


def throughput(part: Part, cmd: Command) -> tuple[int, float]:
    """(bytes, MB/s) of a part-B command: verify's bytes_hashed, or the pipeline's bytes read."""
    size = part.get("json").payload["bytes_hashed"] if cmd.kind == "verify" else part.facts["regular"][1]
    return size, size / 1e6 / cmd.median


def large_rows(part: Part) -> list[list[str]]:
    out = []
    pipe_rate = throughput(part, part.get("pipe"))[1]
    for cmd in part.commands:
        size, rate = throughput(part, cmd)
        share = rate / pipe_rate
        files = part.get("json").payload["files"] if cmd.kind == "verify" else part.facts["regular"][0]
        within = ("yes" if share >= TARGET_SHARE else "no") if cmd.target else ""
        out.append(
            benchlib.command_row(
                cmd, [str(files), f"{size / 1e6:.1f}", f"{rate:.0f}", f"{share:.0%}"], within
            )
        )
    return out


def small_verdict(part: Part) -> str:
    v = part.get("verify")
    others = ", ".join(
        f"`{part.get(k).label.split('$E ', 1)[-1]}` {ms(part.get(k).median)} ms" for k in ("fast", "json")
    )
    met = "met" if v.median * 1000 <= TARGET_MS else "not met"
    return (
        f"**Target A, the whole `verify --env` within {TARGET_MS} ms: {met}** (median {ms(v.median)} ms over "
        f"{len(v.wall)} runs; {others}; with `--project` {ms(part.get('project').median)} ms, which the "
        "target does not cover)."
    )


def large_verdict(part: Part) -> str:
    v = part.get("verify")
    rate, pipe_rate = throughput(part, v)[1], throughput(part, part.get("pipe"))[1]
    share = rate / pipe_rate
    met = "met" if share >= TARGET_SHARE else "not met"
    return (
        f"**Target B, verify's throughput at least {TARGET_SHARE:.0%} of the pipeline's: {met}** "
        f"(whole command: {rate:.0f} MB/s against the `sha256sum` pipeline's {pipe_rate:.0f} MB/s, "
        f"{share:.0%}; medians over {len(v.wall)} runs)."
    )


def observations(parts: Sequence[Part], machine: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part.error:
            continue
        out += [f"{part.key}: {n}" for n in part.notes]
        for cmd in part.commands:
            findings = sum(1 for x in cmd.exits if x == 1)
            if findings:
                out.append(
                    f"{part.key}: `{cmd.label}` exited 1 (findings) in {findings} of {len(cmd.exits)} runs"
                )
        count, total = part.facts["regular"]
        payload = part.get("json").payload
        same = (
            "the same bytes" if payload["bytes_hashed"] == total else "DIFFERENT bytes: check the file sets"
        )
        out.append(
            f"{part.key}: verify's JSON: {payload['files']} files (symlinks included), "
            f"{payload['bytes_hashed']} bytes hashed; the pipeline reads {count} regular files, "
            f"{total} bytes ({same})"
        )
        if part.key == "A":
            v, j, p, imp = part.get("verify"), part.get("json"), part.get("pass"), part.get("imports")
            inproc = j.internal_median or 0.0
            out.append(
                f"A: where `verify --env --json`'s {ms(j.median)} ms go (medians): interpreter start-up "
                f"{ms(p.median)} ms (`python -c pass`), plus verify's imports {ms(imp.median - p.median)} ms "
                f"(the import anchor, {ms(imp.median)} ms, less start-up), plus the in-process run "
                f"{ms(inproc)} ms (`duration_s`, lazy imports included); the remaining "
                f"{ms(j.median - imp.median - inproc)} ms is output, interpreter exit and noise. "
                f"Text output (`verify --env`) takes {ms(v.median)} ms."
            )
        if part.key == "B":
            v, j = part.get("verify"), part.get("json")
            inproc = j.internal_median or 0.0
            mb = payload["bytes_hashed"] / 1e6
            out.append(
                f"B: in-process (`duration_s` of `--json`) verify hashes at {mb / inproc:.0f} MB/s "
                f"({ms(inproc)} ms); the whole command at {mb / v.median:.0f} MB/s"
            )
    if any(p.key == "B" and not p.error for p in parts):
        out.append(
            f"the pipeline's `sha256sum` is {machine['sha256sum']}, on one core; verify hashes with "
            f"Python's hashlib (OpenSSL) on {machine['nproc']} threads; the `openssl dgst -sha256` row "
            f"({machine['openssl'] or 'openssl'}) is the same pipeline with OpenSSL's sha256, for comparison"
        )
    return out


TABLES: dict[str, tuple[list[str], Callable[[Part], list[list[str]]], Callable[[Part], str]]] = {
    "A": (SMALL_HEADERS, small_rows, small_verdict),
    "B": (LARGE_HEADERS, large_rows, large_verdict),
}


def markdown(parts: Sequence[Part], machine: Mapping[str, str], command: str, large_dir: Path) -> str:
    python_note = (
        f"`$PY` = `{machine['vk_python']}`, venvkeeper's interpreter; "
        f"deploys got `--python {machine['python_path']}`"
    )
    out = [
        *benchlib.section_head(SECTION, command, machine, python_note),
        "",
        benchlib.ratio_legend("verify's", "verify"),
        "",
    ]
    for part in parts:
        out += [f"### {part.title}", ""]
        if part.error:
            out += benchlib.failed_block(f"{part.title}: failed.", part.error)
            continue
        headers, rows, verdict = TABLES[part.key]
        out += benchlib.table_block(headers, rows(part), verdict(part))
    out += [
        "### Commands",
        "",
        "`$E` is the `--env` path (a symlink); `$G` the generation directory it points to, i.e. the "
        "directory verify walks, so the pipeline reads exactly the files verify hashes (regular "
        "files, symlinks not followed, `__pycache__` skipped). Every command runs with a bench-owned "
        "`UV_CACHE_DIR` and `UV_PYTHON_DOWNLOADS=never`.",
        "",
        f"- **A** ({benchlib.rounds_of(parts, 'A')}): `venvkeeper deploy examples/webapp --env $E` (its "
        "post-deploy hooks run; the database they create sits beside `$E`) into a directory under "
        "`bench/.work/verify/`, removed afterwards. `$IMPORTS` is "
        f"`{VERIFY_IMPORTS}`: the modules verify loads outside its run (`duration_s`); "
        "that anchor does no work.",
        f"- **B** ({benchlib.rounds_of(parts, 'B')}): a project depending on {', '.join(LARGE_DEPENDENCIES)} "
        f"(unpinned, locked once with `uv lock` against PyPI) in `{large_dir}/project`, deployed with "
        f"`venvkeeper deploy {large_dir}/project --env {large_dir}/.venv --keep 0`; kept for the next "
        "run. Its root is virtual (dependencies only). Throughput is "
        "MB (10^6 bytes) hashed over the whole command's median wall time; verify's bytes are "
        "`bytes_hashed` of its JSON.",
        "",
        benchlib.ROUNDS_NOTE,
        "",
        *benchlib.observation_lines(observations(parts, machine)),
        *benchlib.all_rounds_lines(
            (f"{part.key} / `{cmd.label}`", cmd) for part in parts if not part.error for cmd in part.commands
        ),
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="rounds of part A (default 21)")
    parser.add_argument("--large-rounds", type=int, default=7, help="rounds of part B (default 7)")
    parser.add_argument("--no-large", action="store_true", help="skip part B (the large environment)")
    parser.add_argument("--large-dir", type=Path, default=DEFAULT_LARGE_DIR, help="kept between runs")
    parser.add_argument("--rebuild-large", action="store_true", help="remove --large-dir first")
    benchlib.add_common_options(parser, "verify", python_help="interpreter given to deploy")
    return parser.parse_args(argv)


def run_parts(tools: Tools, work: Path, args: argparse.Namespace) -> list[Part]:
    """Every selected part; a failing one is reported with its error and the other still runs."""
    parts = [
        benchlib.run_part(
            Part("A", "A: examples/webapp, the whole command", args.rounds),
            lambda p: part_small(tools, work, args.rounds, p),
            "  A ",
        )
    ]
    if not args.no_large:
        large = args.large_dir.resolve()
        parts.append(
            benchlib.run_part(
                Part("B", "B: a large environment, hashing throughput", args.large_rounds),
                lambda p: part_large(tools, large, args.large_rounds, p),
                "  B ",
            )
        )
    return parts


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    if args.rebuild_large:
        shutil.rmtree(args.large_dir, ignore_errors=True)
    machine = machine_facts(tools)
    parts = benchlib.measure(
        lambda: run_parts(tools, work, args), tools, machine, work, keep_work=args.keep_work
    )
    for part in parts:
        benchlib.print_part(part, *TABLES[part.key])
    benchlib.conclude(
        observations(parts, machine),
        args.write,
        "verify_bench.py",
        argv,
        SECTION,
        lambda command: markdown(parts, machine, command, args.large_dir.resolve()),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
