"""Bundle install profile (issue 14): where ``venvkeeper install`` of a bundle spends its time.

    python bench/bundle_profile.py [--rounds N] [--only new|upgrade|clone] [--baseline PYTHON]
                                   [--vk-bytecode] [--cprofile N]

Two scenarios on examples/webapp (copied, its ``[tool.venvkeeper.hooks]`` table removed, as
bundle_bench does), each against its raw-uv anchor, interleaved round by round after one untimed
round:

- **new**: bundle A into a new ``--env`` (bundle_bench's install target), against ``uv venv`` +
  ``uv pip sync --offline --find-links $W --require-hashes`` of the same wheels into a new venv.
- **upgrade**: bundle B (the same project with a line appended to webapp's ``__init__.py`` and
  packed again: a newer bundle whose webapp wheel changed) into an ``--env`` where A was installed
  just before (not timed), against ``uv pip sync --reinstall-package webapp`` of B's wheels into a
  venv where A's were synced just before (not timed). Without ``--reinstall-package`` uv keeps the
  installed webapp, whose name and version B's has too (astral-sh/uv#4412), and installs nothing.
- **clone** (an estimate for issue 14's incremental generations, which install does not do yet): A
  then B installed into one ``--env``; then by hand, each step timed in this process: generation 1
  (A's) cloned with ``cp -al``, B's ``pylock.toml`` pointed at the wheel store synced into the clone
  with uv (it reinstalls only webapp, whose store path changed), webapp's files compiled
  (``compileall``), the smoke check's imports with ``-I -B`` (on the bytecode the clone links), and
  the clone sealed whole (an upper bound: a clone's seal would hash only what changed).

Each venvkeeper run is a child process under a driver that wraps venvkeeper's module functions and
sums each one's time over its calls (as deploy_profile does); steps marked "parallel" run in a
thread beside another step, so the rows do not add up. ``--cprofile N`` also runs the new scenario
once under cProfile and prints the N functions with the largest cumulative time. ``--baseline
PYTHON`` also runs the venvkeeper importable by that interpreter (another checkout's venv: the tree
before a change) in the same rounds, so before and after are measured under the same load. uv's
cache and venvkeeper's download cache are the bench's own. It only prints; nothing fails on a ratio.

``--vk-bytecode``: venvkeeper's own modules imported from bytecode, as an installed venvkeeper's are
after its first run. With ``PYTHONDONTWRITEBYTECODE=1`` in the environment (as in the sessions that
ran these benches) and a development install, every venvkeeper process compiles its modules again
(about 100 ms here). The option runs the venvkeeper processes without that variable and with
``PYTHONPYCACHEPREFIX`` set to a directory in the work dir (nothing is written into the tree); the
interpreters venvkeeper starts (smoke check, probe) run with ``-I``, which ignores both.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import io
import json
import pstats
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import benchlib
from benchlib import BenchError, Tools
from bundle_bench import TOP, Bench, Results
from deploy_bench import CHANGED_FILE, git, remove_env

from venvkeeper.bundle import store
from venvkeeper.generations import manifest as sealing
from venvkeeper.generations.layout import Layout

PROG = "bundle_profile"

# venvkeeper in-process with some of its functions timed: argv is the JSON file the times go to, the
# targets ("module:name" or "module:Class.name", comma-separated), then the command's own arguments.
# With a fourth leading argument (a path, or "-" for none), cProfile's stats are dumped there.
DRIVER = r"""
import functools, importlib, json, sys, time
started = time.perf_counter()
out, spec, prof, *argv = sys.argv[1:]
times = {}
def wrap(target):
    module_name, dotted = target.split(":")
    try:  # a step an older tree does not have (to profile it with this script) is left out
        owner = importlib.import_module(module_name)
    except ImportError:
        return
    *path, name = dotted.split(".")
    for part in path:
        owner = getattr(owner, part, None)
    original = getattr(owner, name, None)
    if original is None:
        return
    @functools.wraps(original)
    def timed(*args, **kwargs):
        begun = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times[target] = times.get(target, 0.0) + time.perf_counter() - begun
    setattr(owner, name, timed)
from venvkeeper.cli import main as cli
imported = time.perf_counter()
for target in spec.split(","):
    wrap(target)
wrapped = time.perf_counter()
if prof != "-":
    import cProfile
    profiler = cProfile.Profile()
    code = profiler.runcall(cli.main, argv)
    profiler.dump_stats(prof)
else:
    code = cli.main(argv)
times["total"] = time.perf_counter() - wrapped
times["imports"] = imported - started
times["wrapped"] = wrapped - imported
with open(out, "w") as fh:
    json.dump(times, fh)
sys.exit(code)
"""

# Each row: target, then "depth|step|what"; "*" before the step when it runs beside another step.
STEPS: list[tuple[str, str]] = [
    ("imports", "0|imports|venvkeeper.cli imported (before cli.main)"),
    ("wrapped", "0|driver|the modules the driver wraps imported"),
    ("total", "0|cli.main|the whole command in-process"),
    ("venvkeeper.bundle.install:_open", "1|open|the bundle checked, the interpreter found and probed"),
    (
        "venvkeeper.bundle.archive:read_bundle",
        "2|read_bundle|gunzip, names, sizes, sha256 (+ wheels written)",
    ),
    ("venvkeeper.bundle.install:_ready", "2|*ready|uv located, the --python interpreter probed (a thread)"),
    ("venvkeeper.bundle.install:_check_target", "2|target|the tags compared (before: the probe too)"),
    ("venvkeeper.generations.transaction:claim", "1|claim|the state directory and its lock"),
    ("venvkeeper.generations.transaction:target_for", "1|target_for|what stands at --env"),
    ("venvkeeper.bundle.install:_stock", "1|stock|the wheel store filled, pylock.toml pointed at it"),
    ("venvkeeper.bundle.store:missing", "2|store check|the store's entries hashed"),
    ("venvkeeper.bundle.archive:extract", "2|extract|second pass: the missing wheels written"),
    ("venvkeeper.bundle.store:put", "2|store put|the extracted wheels renamed into the store"),
    ("venvkeeper.generations.transaction:build_and_switch", "1|generation|populate, record, switch, prune"),
    ("venvkeeper.bundle.install:_populate", "2|populate|everything inside the new directory"),
    ("venvkeeper.generations.engine:create_venv", "3|uv venv|`uv venv`"),
    ("venvkeeper.generations.engine:install_pylock", "3|uv pip sync|the pylock.toml, offline"),
    ("venvkeeper.generations.wheels:inspect_wheel", "3|inspect wheels|the members' modules and scripts"),
    ("venvkeeper.generations.build:finish", "3|finish|smoke check beside the seal, manifest written"),
    ("venvkeeper.generations.smoke:smoke_check", "4|*smoke check|the members imported, scripts checked"),
    ("venvkeeper.generations.manifest:seal", "4|*seal|every file hashed"),
    ("venvkeeper.generations.layout:Layout.switch_to", "2|switch|the symlink replaced"),
    ("venvkeeper.generations.layout:Layout.prune", "2|prune|old generations removed"),
    ("venvkeeper.bundle.store:prune", "1|store prune|entries no kept generation records"),
    ("venvkeeper.core.files:remove_tree", "1|remove_tree|scratch and pruned directories removed"),
]
FUNCTIONS = [target for target, _ in STEPS if ":" in target]
SCENARIOS = ("new", "upgrade", "clone")
NEWER = "# a newer release\n"  # appended to webapp's __init__.py for bundle B
UPGRADE_ANCHOR = "uv pip sync --reinstall-package webapp of B's wheels into the venv holding A's"
CLONE_STEPS = ("clone", "uv pip sync", "compile", "smoke -I -B", "seal (whole)")


class Profile:
    def __init__(self, tools: Tools, work: Path, baseline: str | None, *, vk_bytecode: bool) -> None:
        self.tools = tools
        self.work = work
        self.baseline = baseline
        self.a = Bench(tools, work / "a", Results(1, ("install",)))
        self.b = Bench(tools, work / "b", Results(1, ("install",)))
        self.b.env, self.b.uv_cache = self.a.env, self.a.uv_cache  # one uv cache, one download cache
        self.vk_env = dict(self.a.env)
        if vk_bytecode:
            self.vk_env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.vk_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        self.walls: dict[str, list[float]] = {}
        self.steps: dict[str, list[dict[str, float]]] = {}

    def setup(self) -> None:
        self.a.setup()
        b = self.b
        b.scratch.mkdir(parents=True)
        shutil.copytree(self.a.project, b.project, symlinks=True)
        changed = b.project / CHANGED_FILE
        changed.write_text(changed.read_text() + NEWER)
        git(b.project, "commit", "-q", "-am", "a newer release")
        exported = [self.tools.venvkeeper, "export", str(b.project), "--format", "requirements"]
        b.run("venvkeeper export", [*exported, "-o", str(b.requirements)])
        b.pack(b.bundle)
        b.extract_wheels()

    def install(
        self, bundle: Path, env_path: Path, prof: str = "-", *, base: bool = False
    ) -> tuple[float, dict[str, float]]:
        out = self.a.fresh("times").with_suffix(".json")
        argv = [
            self.baseline if base and self.baseline else self.tools.vk_python,
            "-c",
            DRIVER,
            str(out),
            ",".join(FUNCTIONS),
            prof,
            "install",
            str(bundle),
            "--env",
            str(env_path),
            "--python",
            self.tools.python,
            "--json",
        ]
        result = benchlib.run(argv, self.vk_env, self.work)
        payload = benchlib.report_json(result)
        if result.returncode != 0 or not payload.get("changed"):
            raise benchlib.failed("venvkeeper install", result)
        times: dict[str, float] = json.loads(out.read_text())
        out.unlink()
        return result.wall_s, times

    def new_env(self) -> Path:
        env_path = self.a.fresh("vk") / ".venv"
        env_path.parent.mkdir(parents=True)
        return env_path

    def record(self, key: str, wall: float, times: dict[str, float] | None = None) -> None:
        self.walls.setdefault(key, []).append(wall)
        if times is not None:
            self.steps.setdefault(key, []).append(times)

    def unit_new(self, timed: bool, *, base: bool = False) -> None:
        env_path = self.new_env()
        wall, times = self.install(self.a.bundle, env_path, base=base)
        self.a.check_same("venvkeeper install", env_path)
        remove_env(env_path)
        if timed:
            self.record("new-base" if base else "new", wall, times)

    def unit_upgrade(self, timed: bool, *, base: bool = False) -> None:
        env_path = self.new_env()
        self.install(self.a.bundle, env_path, base=base)
        wall, times = self.install(self.b.bundle, env_path, base=base)
        self.b.check_same("venvkeeper install (upgrade)", env_path)
        check_newer("venvkeeper install (upgrade)", env_path)
        remove_env(env_path)
        if timed:
            self.record("upgrade-base" if base else "upgrade", wall, times)

    def unit_uv_new(self, timed: bool) -> None:
        path, venv = self.a.new_venv("uv")
        sync = self.a.uv_sync(path / "bin" / "python", self.a.wheels)
        shutil.rmtree(path)
        if timed:
            self.record("uv-new", venv.wall_s + sync.wall_s)

    def unit_uv_upgrade(self, timed: bool) -> None:
        path, _ = self.a.new_venv("uv-up")
        python = path / "bin" / "python"
        self.a.uv_sync(python, self.a.wheels)
        # Without --reinstall-package, uv keeps the installed webapp 0.1.0 (the same name and version;
        # astral-sh/uv#4412) and "syncs" in 14 ms while the old code stays: the anchor would do nothing.
        argv = [*self.b.uv_sync_argv(python, self.b.wheels), "--reinstall-package", "webapp"]
        sync = self.b.run("uv pip sync (upgrade)", argv)
        self.b.check_same("uv pip sync (upgrade)", path)
        check_newer("uv pip sync (upgrade)", path)
        shutil.rmtree(path)
        if timed:
            self.record("uv-upgrade", sync.wall_s)

    def unit_clone(self, timed: bool) -> None:
        env_path = self.new_env()
        self.install(self.a.bundle, env_path)
        self.install(self.b.bundle, env_path)
        layout = Layout.for_env(env_path)
        first, clone = layout.gen_dir(1), env_path.parent / "clone"
        times: dict[str, float] = {}

        def timed_step(name: str, step: Callable[[], object]) -> None:
            started = time.perf_counter()
            step()
            times[name] = time.perf_counter() - started

        timed_step("clone", lambda: subprocess.run(["cp", "-al", str(first), str(clone)], check=True))
        pylock = env_path.parent / "pylock.toml"
        with tarfile.open(self.b.bundle) as tar:
            raw = tar.extractfile(f"{TOP}pylock.toml").read()  # type: ignore[union-attr]
            manifest = json.load(tar.extractfile(f"{TOP}manifest.json"))  # type: ignore[arg-type]
        wheels = {
            f["path"]: (f["size"], f["sha256"]) for f in manifest["files"] if f["path"].startswith("wheels/")
        }
        pylock.write_text(store.pointed_pylock(raw, layout, wheels))
        python = clone / "bin" / "python"
        sync = [self.tools.uv, "pip", "sync", "--offline", "--no-index", "--preview-features", "pylock"]
        env = {**self.a.env, "UV_OFFLINE": "1"}
        # As for uv's anchor: the same name and version is kept unless named (astral-sh/uv#4412).
        argv = [*sync, "--python", str(python), "--quiet", "--reinstall-package", "webapp", str(pylock)]
        timed_step("uv pip sync", lambda: self.a.run("uv pip sync (clone)", argv, env))
        site = next(clone.glob("lib/python*/site-packages"))
        timed_step("compile", lambda: compileall.compile_dir(site / "webapp", quiet=1, workers=1))
        code = "import " + ", ".join(sorted(wheel.split("-")[0] for wheel in self.a.members))
        imports = [str(python), "-I", "-B", "-c", code]
        timed_step("smoke -I -B", lambda: self.a.run("the smoke imports (clone)", imports, env))
        timed_step("seal (whole)", lambda: sealing.seal(clone, {}))
        self.b.check_same("the clone", clone)
        check_newer("the clone", clone)
        shutil.rmtree(clone)
        remove_env(env_path)
        if timed:
            self.record("clone", sum(times.values()), times)

    def cprofile(self, top: int) -> str:
        prof = self.work / "install.prof"
        env_path = self.new_env()
        self.install(self.a.bundle, env_path, str(prof))
        remove_env(env_path)
        return pstats_text(prof, top)


def check_newer(who: str, env_path: Path) -> None:
    """The environment runs bundle B's webapp (the same name and version as A's, other code)."""
    [init] = env_path.resolve().glob(f"lib/python*/site-packages/{CHANGED_FILE.split('/src/')[1]}")
    if not init.read_text().endswith(NEWER):
        raise BenchError(f"{who}: {init} is still bundle A's webapp")


def pstats_text(prof: Path, top: int) -> str:
    buffer = io.StringIO()
    pstats.Stats(str(prof), stream=buffer).sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


def table(walls: Sequence[float], rounds: Sequence[dict[str, float]]) -> str:
    headers = ["step", "median ms", "min ms", "max ms", "calls seen", "what"]
    rows = [["process wall", *cells(walls), "", "python start to exit"]]
    for target, row in STEPS:
        depth, step, what = row.split("|")
        seen = [r[target] for r in rounds if target in r]
        label = "  " * int(depth) + step.lstrip("*") + (" (parallel)" if step.startswith("*") else "")
        if not seen:
            rows.append([label, "-", "-", "-", "0", what])
            continue
        rows.append([label, *cells(seen), f"{len(seen)}/{len(rounds)}", what])
    return benchlib.text_table(headers, rows)


def cells(values: Sequence[float]) -> list[str]:
    return [benchlib.ms(statistics.median(values)), benchlib.ms(min(values)), benchlib.ms(max(values))]


def summary(profile: Profile) -> str:
    lines = []
    for scenario, anchor, what in (
        ("new-base", "uv-new", "uv venv + uv pip sync into a new venv"),
        ("new", "uv-new", "uv venv + uv pip sync into a new venv"),
        ("upgrade-base", "uv-upgrade", UPGRADE_ANCHOR),
        ("upgrade", "uv-upgrade", UPGRADE_ANCHOR),
        ("clone", "uv-upgrade", UPGRADE_ANCHOR),
    ):
        vk, uv = profile.walls.get(scenario, []), profile.walls.get(anchor, [])
        if not vk or not uv or len(vk) != len(uv):
            continue
        pairs = statistics.median(a / b for a, b in zip(vk, uv, strict=True))
        who = "the clone's steps (estimate)" if scenario == "clone" else "venvkeeper install"
        lines.append(
            f"{scenario}: {who} {statistics.median(vk) * 1000:.0f} ms"
            f" (rounds {', '.join(f'{v * 1000:.0f}' for v in vk)}); anchor ({what})"
            f" {statistics.median(uv) * 1000:.0f} ms (rounds {', '.join(f'{v * 1000:.0f}' for v in uv)});"
            f" {statistics.median(vk) / statistics.median(uv):.2f}x (round by round {pairs:.2f}x)"
        )
    for scenario in SCENARIOS:
        after, before = profile.walls.get(scenario, []), profile.walls.get(f"{scenario}-base", [])
        if after and len(after) == len(before):
            pairs = statistics.median(a / b for a, b in zip(after, before, strict=True))
            a, b = statistics.median(after), statistics.median(before)
            lines.append(
                f"{scenario}: this tree ÷ the baseline {a / b:.2f} (round by round {pairs:.2f}),"
                f" {(b - a) * 1000:.0f} ms less"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="a scenario (repeatable)")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="print cProfile's top N")
    parser.add_argument(
        "--baseline", metavar="PYTHON", help="also run the venvkeeper this interpreter imports"
    )
    parser.add_argument("--vk-bytecode", action="store_true", help="venvkeeper's modules from bytecode")
    benchlib.add_common_options(parser, PROG, python_help="interpreter given to venvkeeper and uv")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = tools.machine()
    profile = Profile(tools, work, args.baseline, vk_bytecode=args.vk_bytecode)
    only = tuple(args.only or SCENARIOS)
    units: list[Callable[[bool], None]] = []
    if "new" in only:
        units += [profile.unit_new, profile.unit_uv_new]
        if args.baseline:
            units.append(functools.partial(profile.unit_new, base=True))
    if "upgrade" in only:
        units += [profile.unit_upgrade, profile.unit_uv_upgrade]
        if args.baseline:
            units.append(functools.partial(profile.unit_upgrade, base=True))
    if "clone" in only:
        units.append(profile.unit_clone)
        if "upgrade" not in only:
            units.append(profile.unit_uv_upgrade)

    def body() -> str:
        profile.setup()
        for i in range(args.rounds + 1):  # round 0 warms the caches and is not counted
            for unit in benchlib.rotated(i, units):
                unit(i > 0)
            if i:
                benchlib.progress("profile", i - 1, args.rounds, summary(profile).replace("\n", "; "))
        return profile.cprofile(args.cprofile) if args.cprofile else ""

    try:
        profiled = benchlib.measure(body, tools, machine, work, keep_work=args.keep_work)
    except BenchError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    print(f"{machine['venvkeeper']} ({machine['source']}); {machine['uv']}; {machine['load']}")
    print(summary(profile))
    for scenario in [s for key in only for s in (f"{key}-base", key) if s in profile.steps and s != "clone"]:
        print(f"\n{scenario}:")
        print(table(profile.walls[scenario], profile.steps[scenario]))
    if "clone" in profile.steps:
        print("\nclone (an estimate, the steps run by hand; no process start, no record, no switch):")
        rows = [[step, *cells([r[step] for r in profile.steps["clone"]])] for step in CLONE_STEPS]
        rows.append(["sum", *cells(profile.walls["clone"])])
        print(benchlib.text_table(["step", "median ms", "min ms", "max ms"], rows))
    if profiled:
        print(profiled)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
