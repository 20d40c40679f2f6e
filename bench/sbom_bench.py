"""SBOM benchmark (issue 16): what the CycloneDX SBOM of a generation costs, for examples/webapp.

    python bench/sbom_bench.py [--rounds N] [--write BENCHMARKS.md]

examples/webapp is deployed once (not timed; its SBOM is written then, as every deploy writes one), then,
each in a fresh interpreter so nothing is already imported:

- **import**: ``import venvkeeper.sbom.document`` (cyclonedx-python-lib) against ``python -c pass``;
  a deploy pays it in a thread while uv installs (``sbom.generation.preload``);
- **build**: the generation's SBOM built again from its sealed manifest, record and lock (what a deploy
  does after the seal: the wheels' tags read, the facts gathered, the document rendered twice for its
  serial number), timed in-process after the import, and checked byte-identical to the one written;
- **sbom --env**: the whole command, which reads the written file and checks it against the record.

It reports the document's size beside the sealed manifest's. Nothing fails on a target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import benchlib
from benchlib import Command, Part, ms

PROG = "sbom_bench"
SECTION = "## sbom (issue 16)"

IMPORT = "import venvkeeper.sbom.document"
# Run by the interpreter venvkeeper runs with: builds the live generation's SBOM ``rounds`` times.
BUILD = """
import hashlib, json, sys, time
from pathlib import Path
from venvkeeper.generations.layout import Layout
from venvkeeper.generations.manifest import read_manifest
from venvkeeper.project.workspace import load_workspace, parse_lock
from venvkeeper.sbom import facts, generation

env, rounds = Path(sys.argv[1]), int(sys.argv[2])
layout = Layout.for_env(env)
number = layout.current_number()
record = json.loads(layout.state_file(number).read_text())
manifest_path = layout.manifest_file(number)
manifest = read_manifest(manifest_path.read_bytes())
started = time.perf_counter()
import venvkeeper.sbom.document
imported = time.perf_counter() - started
times = []
for _ in range(rounds):
    started = time.perf_counter()
    workspace = load_workspace(Path(record["project"]))
    entries = facts.lock_entries(parse_lock(workspace))
    when = generation.lock_time(workspace.root)
    raw = generation.build(layout.gen_dir(number), manifest, record, entries, when)
    times.append(time.perf_counter() - started)
written = generation.sbom_path(manifest_path).read_bytes()
print(json.dumps({
    "import_s": imported, "build_s": times, "bytes": len(raw), "same": raw == written,
    "components": len(json.loads(raw)["components"]), "manifest_bytes": manifest_path.stat().st_size,
    "record_sha256": record.get("sbom_sha256") == hashlib.sha256(written).hexdigest(),
}))
"""


def measure(args: argparse.Namespace, work: Path, tools: benchlib.Tools, part: Part) -> dict[str, object]:
    env_path, env = benchlib.deploy_example(tools, work, part)
    python = tools.vk_python
    part.commands = [
        benchlib.pass_anchor(python),
        Command("import", "$PY -c 'import venvkeeper.sbom.document'", [python, "-c", IMPORT], "sbom"),
        Command(
            "sbom", "venvkeeper sbom --env $E", [tools.venvkeeper, "sbom", "--env", str(env_path)], "sbom"
        ),
    ]
    benchlib.time_rounds(part.key, part.commands, part.rounds, env, work, ours={"import", "sbom"})
    result = benchlib.run([python, "-c", BUILD, str(env_path), str(args.rounds)], env, work)
    if result.returncode != 0:
        raise benchlib.failed("building the SBOM in-process", result)
    built: dict[str, object] = json.loads(result.stdout)
    return built


def rows(part: Part, built: dict[str, object]) -> list[list[str]]:
    floor = part.commands[0]
    table = [[f"`{c.label}`", ms(c.median), ms(c.median - floor.median)] for c in part.commands]
    builds = built["build_s"]
    assert isinstance(builds, list)
    table.append(["build the SBOM (in-process, after the import)", ms(statistics.median(builds)), "-"])
    return table


def section(part: Part, built: dict[str, object], machine: dict[str, str], command: str) -> str:
    lines = [*benchlib.section_head(SECTION, command, machine, "the interpreter venvkeeper runs with"), ""]
    if part.error:
        return "\n".join([*lines, *benchlib.failed_block("sbom", part.error)])
    lines += benchlib.table_lines(["what", "median", "above `python -c pass`"], rows(part, built))
    lines += [
        "",
        f"The document: {built['bytes']} bytes for {built['components']} components (the sealed manifest: "
        f"{built['manifest_bytes']} bytes); rebuilt byte-identical to the one the deploy wrote: "
        f"{built['same']}; its sha256 in the record: {built['record_sha256']}.",
        "",
        *benchlib.observation_lines(part.notes),
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11, help="rounds (default 11)")
    benchlib.add_common_options(parser, PROG, python_help="the interpreter given to --python")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = tools.machine()
    part = Part("sbom", "examples/webapp", args.rounds)
    built: dict[str, object] = {}

    def step(p: Part) -> None:
        built.update(measure(args, work, tools, p))

    benchlib.measure(lambda: benchlib.run_part(part, step), tools, machine, work, keep_work=args.keep_work)
    text = section(part, built, machine, benchlib.command_line("sbom_bench.py", argv))
    print(text)
    benchlib.conclude(
        [], args.write, "sbom_bench.py", argv, SECTION, lambda cmd: section(part, built, machine, cmd)
    )
    return 1 if part.error else 0


if __name__ == "__main__":
    sys.exit(main())
