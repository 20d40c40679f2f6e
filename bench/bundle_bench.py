"""Bundle benchmark (issue 6): fetching a lock's wheels, ``venvkeeper install`` and ``venvkeeper pack``.

    python bench/bundle_bench.py [--rounds N] [--only fetch|install|pack] [--write BENCHMARKS.md]

The issue's requirements, on examples/webapp (locked against public PyPI), one run each:

- "Fetching the lock's wheels: at least 4x faster than `pip download --only-binary=:all: -r` of the
  same set."
- "Installing the bundle offline: at least 10x faster than `pip install --no-index --find-links` of
  the same wheels, and at most 1.2x raw `uv pip sync --offline --no-index --find-links
  --require-hashes`."
- "Report pack time and bundle size next to the sum of the wheels' sizes."

Setup (not timed): the git-tracked files of examples/webapp are copied into a new git repository with
the ``[tool.venvkeeper.hooks]`` table removed (uv and pip run no hooks; the bundle would carry them),
``venvkeeper export --format requirements`` writes the lock's hashed runtime set, ``venvkeeper pack``
writes the bundle (downloading into a bench-owned download cache), and the bundle's wheels are
extracted into one directory. The anchors install the exported requirements plus the two members'
wheels (pinned by the sha256 of the bundled files): exactly the bundle's 20 wheels.

Three parts, each with its commands interleaved round by round (the first rotates every round) after
one untimed run of each:

- fetch, cold on both sides: venvkeeper's fetch through the library (``target.target_for``,
  ``runtime_packages``, ``select_wheels``, ``download`` into a new, empty cache directory), timed
  in-process in a child process (whose wall time is reported too), against ``pip download
  --only-binary=:all: -r requirements.txt`` into a new directory with a new ``--cache-dir``. Both
  download the same files from PyPI, checked afterwards.
- install, offline: ``venvkeeper install BUNDLE --env NEW`` (whole process; a new env path every run)
  against ``uv venv`` + ``uv pip sync --offline --no-index --find-links DIR --require-hashes`` and
  ``uv venv`` + ``pip install --no-index --find-links DIR -r`` into new environments (``uv venv`` timed
  on both sides, because venvkeeper creates its environment inside the timed command). uv's cache is
  the bench's own and warm for uv and venvkeeper; pip's cache is the bench's own and warm too. The
  installed distributions are compared. Informational: the sync alone, ``pip install --no-compile``,
  ``uv pip sync`` from a copy of the wheels at a new path (as venvkeeper's scratch directory is), the
  ``uv pip sync`` of the bundle's pylock.toml that venvkeeper runs (from a fixed extraction and from a
  copy at a new path), and the smoke check's imports timed in uv's new environment.
- pack: ``venvkeeper pack`` with the download cache warm, and with a new, empty one (the wheels
  downloaded); bundle size against the sum of the wheels' sizes, and whether every pack is
  byte-identical to the first.

For "where the time goes", every part also runs venvkeeper once per round under a small driver that
times its main functions in-process (these runs are reported separately, never in the targets).
Nothing fails on a target: the script measures and reports.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
from benchlib import EXAMPLE, REPO, BenchError, Run, Tools, bench_env, ms, run
from deploy_bench import Series, git, remove_env, strip_table

PROG = "bundle_bench"
SECTION = "## bundle (issue 6)"
FETCH_TARGET = 4.0  # pip download's time over venvkeeper's fetch
PIP_TARGET = 10.0  # pip install's time over venvkeeper install's
UV_TARGET = 1.2  # venvkeeper install's time over uv pip sync's
INDEX = "https://pypi.org/simple"
TOP = "venvkeeper-bundle/"
PARTS = ("fetch", "install", "pack")

# venvkeeper's fetch through the library, as pack runs it: argv is the lock and an empty cache dir.
FETCH_DRIVER = r"""
import json, sys, time
started = time.perf_counter()
import tomllib
from pathlib import Path
from venvkeeper.bundle import fetch, locked, target as bundletarget
imported = time.perf_counter()
lock_path, cache = Path(sys.argv[1]), Path(sys.argv[2])
lock = tomllib.loads(lock_path.read_text())
target = bundletarget.target_for(None, ())
pins = locked.runtime_packages(lock, (), target.marker_environment())
artifacts, missing = locked.select_wheels(lock, pins, target, root=lock_path.parent)
selected = time.perf_counter()
files = fetch.download(artifacts, cache, progress=False)
done = time.perf_counter()
print(json.dumps({
    "imports": imported - started,
    "select": selected - imported,
    "download": done - selected,
    "files": sorted(files),
    "missing": missing,
    "bytes": sum(path.stat().st_size for path in files.values()),
}))
"""

# urllib makes a TLS context per connection when it is given none: argv[1] of them, timed.
TLS_DRIVER = r"""
import ssl, sys, time
started = time.perf_counter()
for _ in range(int(sys.argv[1])):
    ssl.create_default_context()
print(time.perf_counter() - started)
"""

# A venvkeeper command run in-process with some of its functions timed: argv is the JSON file the
# times go to, the functions ("module:name,..."), then the command's own arguments. Each function's
# time is the sum over its calls; "total" is cli.main's.
TIMING_DRIVER = r"""
import functools, importlib, json, sys, time
out, spec, *argv = sys.argv[1:]
times = {}
def wrap(target):
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    @functools.wraps(original)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times[target] = times.get(target, 0.0) + time.perf_counter() - started
    setattr(module, name, timed)
for target in spec.split(","):
    wrap(target)
from venvkeeper.cli import main as cli
started = time.perf_counter()
code = cli.main(argv)
times["total"] = time.perf_counter() - started
with open(out, "w") as fh:
    json.dump(times, fh)
sys.exit(code)
"""

# (function, step, what it does); "nested" steps run inside the step above them that is not nested.
INSTALL_STEPS: list[tuple[str, str, str, bool]] = [
    (
        "venvkeeper.bundle.install:_open",
        "open",
        "the bundle read once and checked, the interpreter found and checked (the rows below are inside it)",
        False,
    ),
    (
        "venvkeeper.bundle.archive:read_bundle",
        "check",
        "the one pass over the bundle: gunzip, every entry's kind and name, sizes and sha256 against the "
        "manifest; the wheels the wheel store lacks written into a scratch directory as they are hashed",
        True,
    ),
    (
        "venvkeeper.bundle.install:_check_target",
        "target",
        "the interpreter's version and platform (probed beside the pass, in a thread, as uv is located) "
        "compared with the bundle's tags",
        True,
    ),
    (
        "venvkeeper.bundle.store:missing",
        "store check",
        "the store's entries for wheels the pass read before the manifest, hashed (none for a bundle as "
        "pack writes it)",
        False,
    ),
    (
        "venvkeeper.bundle.archive:extract",
        "extract",
        "a second pass, only for wheels read before the manifest that the store lacks (none for a bundle "
        "as pack writes it)",
        False,
    ),
    (
        "venvkeeper.bundle.store:put",
        "store put",
        "the wheels the pass wrote renamed into the store",
        False,
    ),
    (
        "venvkeeper.generations.transaction:build_and_switch",
        "generation",
        "the new generation built, recorded and switched to (the rows below are inside it)",
        False,
    ),
    ("venvkeeper.generations.engine:create_venv", "uv venv", "`uv venv`", True),
    (
        "venvkeeper.generations.engine:install_pylock",
        "uv pip sync",
        "`uv pip sync --offline --no-index --preview-features pylock` of the bundle's pylock.toml "
        "(wheels at their stable paths in the wheel store)",
        True,
    ),
    (
        "venvkeeper.generations.wheels:inspect_wheel",
        "members",
        "the members' wheels read for modules and scripts",
        True,
    ),
    (
        "venvkeeper.generations.smoke:smoke_check",
        "smoke check",
        "the new interpreter imports the members' top-level packages (no bytecode written) and checks "
        "their console scripts",
        True,
    ),
    (
        "venvkeeper.generations.manifest:seal",
        "seal",
        "every installed file hashed into the sealed manifest",
        True,
    ),
]
# What a parent step's "rest" row is, where it is not pack's members step.
REST = {
    "venvkeeper.bundle.install:_open": "the rest of the step above: the scratch directory made, the wait "
    "for the thread (uv located, `--python` probed) past the pass",
    "venvkeeper.generations.transaction:build_and_switch": "the rest of the step above: records written, "
    "the switch, locks",
}
PACK_STEPS: list[tuple[str, str, str, bool]] = [
    ("venvkeeper.gateways.git:list_files", "git ls-files", "the project's tracked files", False),
    (
        "venvkeeper.core.files:copy_files",
        "staging copy",
        "the tracked files copied to a scratch directory",
        False,
    ),
    (
        "venvkeeper.generations.engine:check_lock",
        "lock check",
        "`uv lock --check` in the staging copy",
        False,
    ),
    (
        "venvkeeper.bundle.fetch:download",
        "fetch",
        "the lock's wheels from the download cache (each cached file hashed again), or from PyPI",
        False,
    ),
    (
        "venvkeeper.bundle.pack:_build_members",
        "members",
        "the members built as wheels (rows below are inside it)",
        False,
    ),
    (
        "venvkeeper.generations.engine:build_wheel",
        "uv build",
        "`uv build --wheel --package NAME`, per member",
        True,
    ),
    ("venvkeeper.bundle.pack:normalize", "normalize", "the built wheels rewritten byte-identically", True),
    ("venvkeeper.bundle.pylockgen:pylock_for", "pylock.toml", "the bundle's PEP 751 lock", False),
    ("venvkeeper.bundle.pack:describe", "manifest", "every file hashed for the manifest", False),
    (
        "venvkeeper.bundle.pack:_write_atomically",
        "write",
        "tar + gzip (level 9) into a temporary file, fsync, rename",
        False,
    ),
]


# --------------------------------------------------------------------------- results


@dataclass
class Results:
    rounds: int
    only: tuple[str, ...]
    series: dict[str, Series] = field(default_factory=dict)
    breakdowns: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # part -> runs
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # part (or "setup") -> the error

    def add(self, key: str, label: str) -> Series:
        self.series[key] = Series(label)
        return self.series[key]

    def get(self, key: str) -> Series:
        return self.series[key]

    def has(self, part: str) -> bool:
        """Whether ``part`` ran and finished."""
        return part in self.only and part not in self.errors and "setup" not in self.errors

    def fact(self, key: str, value: Any) -> None:
        self.facts.setdefault(key, []).append(value)


# key -> (the command, shown as code; what it is; its part)
LABELS = {
    "fetch": (
        "fetch.download(...)",
        "venvkeeper's fetch, in-process: the lock read, its wheels chosen and downloaded (cold)",
        "fetch",
    ),
    "fetch-process": ("$VKPY -c '<the fetch>'", "the same, the whole child process", "fetch"),
    "pip-download": (
        f"pip download --only-binary=:all: --index-url {INDEX} --cache-dir $NEW -d $NEW -r $REQ",
        "(cold)",
        "fetch",
    ),
    "install": ("venvkeeper install $B --env $NEW --python $PY --json", "", "install"),
    "uv": ("uv venv + uv pip sync", "(the two rows below)", "install"),
    "uv-venv": ("uv venv --python $PY $NEW", "", "install"),
    "uv-sync": (
        "uv pip sync --offline --no-index --find-links $W --require-hashes --python $NEW/bin/python $REQ+",
        "",
        "install",
    ),
    "pip": ("uv venv + pip install", "(the two rows below)", "install"),
    "pip-venv": ("uv venv --python $PY $NEW", "", "install"),
    "pip-install": (
        "pip --python $NEW/bin/python install --no-index --find-links $W --cache-dir $PC -r $REQ+",
        "",
        "install",
    ),
    "pip-no-compile": ("pip ... install --no-compile ...", "(as above, no bytecode written)", "install"),
    "uv-new-path": (
        "uv pip sync ... --find-links $W2 ...",
        "(as the sync above, the wheels copied to a new directory first)",
        "install",
    ),
    "pylock": (
        "uv pip sync --offline --no-index --preview-features pylock --python $NEW/bin/python $X/pylock.toml",
        "(what venvkeeper runs, from a fixed extraction of the bundle)",
        "install",
    ),
    "pylock-new-path": (
        "uv pip sync ... $X2/pylock.toml",
        "(as above, the extraction copied to a new directory first)",
        "install",
    ),
    "smoke-import": (
        "$NEW/bin/python -I -c 'import sitecore, webapp'",
        "(PYTHONDONTWRITEBYTECODE=1, in uv's env just after its sync: the smoke check's imports)",
        "install",
    ),
    "pack-warm": ("venvkeeper pack $P -o $NEW/b.tar.gz --json", "(download cache warm)", "pack"),
    "pack-cold": ("venvkeeper pack $P -o $NEW/b.tar.gz --json", "(download cache empty)", "pack"),
}


def shown(key: str) -> str:
    """A command's label in the report: the command as code, then what it is."""
    command, what, _ = LABELS[key]
    return f"`{command}` {what}".rstrip()


# --------------------------------------------------------------------------- the bench


def canonical_dists(env_path: Path) -> list[str]:
    """``name-version`` of every ``*.dist-info`` in the environment's site-packages (lower case)."""
    found = env_path.resolve().glob("lib/python*/site-packages/*.dist-info")
    return sorted(p.name.removesuffix(".dist-info").lower() for p in found)


def tree_bytes(root: Path) -> int:
    return benchlib.entries(root)[2] if root.exists() else 0


def pip_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with pip's configuration left out (this machine's pip.conf adds local indexes and
    find-links), except its CA bundle and timeout: pip sees PyPI only, as venvkeeper's fetch does."""
    out = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    out.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    for keep in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT"):
        if keep in os.environ:
            out[keep] = os.environ[keep]
    return out


class Bench:
    def __init__(self, tools: Tools, work: Path, results: Results) -> None:
        self.tools = tools
        self.work = work
        self.results = results
        self.project = work / "project"
        self.bundle = work / "bundle.tar.gz"
        self.wheels = work / "wheels"
        self.extracted = work / "extracted"  # the whole bundle, for the pylock.toml rows
        self.requirements = work / "requirements.txt"  # venvkeeper export's: the lock's runtime set
        self.requirements_all = work / "requirements-all.txt"  # and the members' bundled wheels
        self.pip_cache = work / "pip-cache"
        self.uv_cache = work / "uv-cache"
        self.env = {**bench_env(self.uv_cache), "XDG_CACHE_HOME": str(work / "xdg")}
        self.pip_env = pip_env(self.env)
        self.scratch = work / "scratch"
        self.counter = 0
        self.bundle_sha256 = ""
        self.lock_wheels: list[str] = []  # the bundle's wheels less the members'
        self.members: list[str] = []

    # -- running

    def fresh(self, prefix: str) -> Path:
        self.counter += 1
        return self.scratch / f"{prefix}-{self.counter:03d}"

    def run(self, what: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
        result = run(argv, env or self.env, self.work)
        if result.returncode != 0:
            raise benchlib.failed(what, result)
        return result

    def pip(self, *args: str) -> list[str]:
        return [self.tools.vk_python, "-m", "pip", *args]

    def timing_driver(self, steps: Sequence[tuple[str, str, str, bool]], *argv: str) -> tuple[Run, dict]:
        out = self.fresh("times").with_suffix(".json")
        spec = ",".join(function for function, *_ in steps)
        result = self.run(
            "the timing driver", [self.tools.vk_python, "-c", TIMING_DRIVER, str(out), spec, *argv]
        )
        times = json.loads(out.read_text())
        out.unlink()
        return result, times

    # -- setup

    def setup(self) -> None:
        self.scratch.mkdir(parents=True)
        self.copy_example()
        pyproject = self.project / "pyproject.toml"
        pyproject.write_text(strip_table(pyproject.read_text(), "tool.venvkeeper.hooks"))
        (self.project / ".gitignore").write_text("build/\n*.egg-info/\n__pycache__/\n.venv/\n")
        git(self.project, "init", "-q")
        git(self.project, "add", "-A")
        git(self.project, "commit", "-q", "-m", "benchmark copy of examples/webapp, hooks removed")
        self.run("pip --version", self.pip("--version"), self.pip_env)
        exported = [self.tools.venvkeeper, "export", str(self.project), "--format", "requirements"]
        self.run("venvkeeper export", [*exported, "-o", str(self.requirements)])
        print("packing the bundle (not timed; downloads the wheels)", file=sys.stderr, flush=True)
        result, payload = self.pack(self.bundle)
        self.bundle_sha256 = payload["sha256"]
        self.results.facts["pack"] = payload
        self.results.notes.append(
            f"the first pack (empty download cache and uv cache) took {result.wall_s:.1f} s (not timed)"
        )
        self.extract_wheels()

    def copy_example(self) -> None:
        listed = self.run("git ls-files", ["git", "-C", str(REPO), "ls-files", "-z", "--", str(EXAMPLE)])
        for name in filter(None, listed.stdout.split("\0")):
            source = REPO / name
            dest = self.project / source.relative_to(EXAMPLE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)

    def extract_wheels(self) -> None:
        """The bundle's wheels into one directory, and the requirements of exactly them."""
        self.wheels.mkdir()
        with tarfile.open(self.bundle) as tar:
            tar.extractall(self.extracted, filter="data")
            manifest = json.load(tar.extractfile(TOP + "manifest.json"))  # type: ignore[arg-type]
            for member in tar.getmembers():
                if member.name.startswith(TOP + "wheels/"):
                    member.name = member.name.removeprefix(TOP + "wheels/")
                    tar.extract(member, self.wheels, filter="data")
        self.members = list(manifest["members"])
        digests = {f["path"].removeprefix("wheels/"): f["sha256"] for f in manifest["files"]}
        self.lock_wheels = sorted(set(digests) - set(self.members) - {"pylock.toml"})
        lines = [self.requirements.read_text().rstrip("\n")]
        for wheel in self.members:
            name, version = wheel.split("-")[:2]
            lines.append(f"{name}=={version} --hash=sha256:{digests[wheel]}")
        self.requirements_all.write_text("\n".join(lines) + "\n")
        self.results.facts["wheels"] = {
            name: (self.wheels / name).stat().st_size for name in sorted(os.listdir(self.wheels))
        }

    def pack(self, out: Path, xdg: Path | None = None) -> tuple[Run, dict[str, Any]]:
        env = {**self.env, "XDG_CACHE_HOME": str(xdg)} if xdg else self.env
        argv = [self.tools.venvkeeper, "pack", str(self.project), "-o", str(out), "--json"]
        result = run(argv, env, self.work)
        payload = benchlib.report_json(result)
        if result.returncode != 0 or not payload.get("ok"):
            raise benchlib.failed("venvkeeper pack", result)
        return result, payload

    # -- fetch

    def unit_fetch(self, timed: bool) -> None:
        cache = self.fresh("fetch-cache")
        lock = str(self.project / "uv.lock")
        result = self.run("venvkeeper's fetch", [self.tools.vk_python, "-c", FETCH_DRIVER, lock, str(cache)])
        payload = json.loads(result.stdout)
        shutil.rmtree(cache, ignore_errors=True)
        if payload["missing"] or payload["files"] != self.lock_wheels:
            raise BenchError(f"venvkeeper's fetch got other files than the bundle's: {payload}")
        if timed:
            self.results.get("fetch").wall.append(payload["select"] + payload["download"])
            process = self.results.get("fetch-process")
            process.wall.append(result.wall_s)
            process.internal.append(payload["select"] + payload["download"])
            self.results.fact("fetch", payload)

    def unit_pip_download(self, timed: bool) -> None:
        dest, cache = self.fresh("pip-download"), self.fresh("pip-download-cache")
        argv = self.pip(
            "download",
            "--only-binary=:all:",
            "--index-url",
            INDEX,
            "--cache-dir",
            str(cache),
            "-d",
            str(dest),
            "-q",
            "-r",
            str(self.requirements),
        )
        result = self.run("pip download", argv, self.pip_env)
        files = sorted(os.listdir(dest))
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        if files != self.lock_wheels:
            raise BenchError(f"pip download got other files than the bundle's: {files}")
        if timed:
            self.results.get("pip-download").wall.append(result.wall_s)

    # -- install

    def check_same(self, who: str, env_path: Path) -> None:
        dists = canonical_dists(env_path)
        expected = self.results.facts.setdefault("dists", dists)
        if dists != expected:
            raise BenchError(f"{who} installed {dists}, not {expected}")

    def unit_install(self, timed: bool) -> None:
        env_path = self.fresh("vk") / ".venv"
        env_path.parent.mkdir(parents=True)
        before = tree_bytes(self.uv_cache)
        argv = [
            self.tools.venvkeeper,
            "install",
            str(self.bundle),
            "--env",
            str(env_path),
            "--python",
            self.tools.python,
            "--json",
        ]
        result = run(argv, self.env, self.work)
        payload = benchlib.report_json(result)
        if result.returncode != 0 or not payload.get("ok") or not payload.get("changed"):
            raise benchlib.failed("venvkeeper install", result)
        grown = tree_bytes(self.uv_cache) - before
        self.check_same("venvkeeper install", env_path)
        remove_env(env_path)
        if timed:
            s = self.results.get("install")
            s.wall.append(result.wall_s)
            s.internal.append(float(payload["duration_s"]))
            self.results.fact("uv_cache_growth", grown)

    def new_venv(self, prefix: str) -> tuple[Path, Run]:
        path = self.fresh(prefix)
        argv = [self.tools.uv, "venv", "--quiet", "--no-project", "--python", self.tools.python, str(path)]
        return path, self.run("uv venv", argv)

    def uv_sync(self, python: Path, wheels: Path) -> Run:
        return self.run("uv pip sync", self.uv_sync_argv(python, wheels))

    def uv_sync_argv(self, python: Path, wheels: Path) -> list[str]:
        return [
            self.tools.uv,
            "pip",
            "sync",
            "--offline",
            "--no-index",
            "--find-links",
            str(wheels),
            "--require-hashes",
            "--python",
            str(python),
            "--quiet",
            str(self.requirements_all),
        ]

    def unit_uv(self, timed: bool) -> None:
        path, venv = self.new_venv("uv")
        sync = self.uv_sync(path / "bin" / "python", self.wheels)
        self.check_same("uv pip sync", path)
        # What venvkeeper's smoke check does in its new environment: import the members, no bytecode.
        code = "import " + ", ".join(sorted(wheel.split("-")[0] for wheel in self.members))
        argv = [str(path / "bin" / "python"), "-I", "-c", code]
        smoke = self.run("the smoke imports", argv, {**self.env, "PYTHONDONTWRITEBYTECODE": "1"})
        shutil.rmtree(path)
        if timed:
            self.record(("uv-venv", venv), ("uv-sync", sync), ("smoke-import", smoke))
            self.results.get("uv").wall.append(venv.wall_s + sync.wall_s)

    def pip_install(self, python: Path, *extra: str) -> Run:
        argv = self.pip(
            "--python",
            str(python),
            "install",
            "--no-index",
            "--find-links",
            str(self.wheels),
            "--cache-dir",
            str(self.pip_cache),
            "-q",
            *extra,
            "-r",
            str(self.requirements_all),
        )
        return self.run("pip install", argv, self.pip_env)

    def unit_pip(self, timed: bool) -> None:
        path, venv = self.new_venv("pip")
        install = self.pip_install(path / "bin" / "python")
        self.check_same("pip install", path)
        shutil.rmtree(path)
        if timed:
            self.record(("pip-venv", venv), ("pip-install", install))
            self.results.get("pip").wall.append(venv.wall_s + install.wall_s)

    def unit_pip_no_compile(self, timed: bool) -> None:
        path, _ = self.new_venv("pip-nc")
        install = self.pip_install(path / "bin" / "python", "--no-compile")
        self.check_same("pip install --no-compile", path)
        shutil.rmtree(path)
        if timed:
            self.record(("pip-no-compile", install))

    def unit_uv_new_path(self, timed: bool) -> None:
        wheels = self.fresh("wheels")
        shutil.copytree(self.wheels, wheels)  # copy2: the same mtimes, only the path is new
        path, _ = self.new_venv("uv-new")
        sync = self.uv_sync(path / "bin" / "python", wheels)
        self.check_same("uv pip sync (new path)", path)
        shutil.rmtree(path)
        shutil.rmtree(wheels)
        if timed:
            self.record(("uv-new-path", sync))

    def unit_pylock(self, timed: bool) -> None:
        """venvkeeper's own sync command, from the fixed extraction and from a copy at a new path."""
        copy = self.fresh("extracted")
        shutil.copytree(self.extracted, copy)
        runs = []
        for key, where in (("pylock", self.extracted), ("pylock-new-path", copy)):
            path, _ = self.new_venv(key)
            argv = [
                self.tools.uv,
                "pip",
                "sync",
                "--offline",
                "--no-index",
                "--preview-features",
                "pylock",
                "--python",
                str(path / "bin" / "python"),
                "--quiet",
                str(where / TOP / "pylock.toml"),
            ]
            result = run(argv, {**self.env, "UV_OFFLINE": "1"}, where / TOP)
            if result.returncode != 0:
                raise benchlib.failed("uv pip sync (pylock.toml)", result)
            self.check_same(f"uv pip sync ({key})", path)
            shutil.rmtree(path)
            runs.append((key, result))
        shutil.rmtree(copy)
        if timed:
            self.record(*runs)

    def unit_install_steps(self, timed: bool) -> None:
        env_path = self.fresh("vk-steps") / ".venv"
        env_path.parent.mkdir(parents=True)
        argv = ("install", str(self.bundle), "--env", str(env_path), "--python", self.tools.python, "--json")
        result, times = self.timing_driver(INSTALL_STEPS, *argv)
        self.check_same("venvkeeper install (timing driver)", env_path)
        remove_env(env_path)
        if timed:
            self.results.breakdowns.setdefault("install", []).append({**times, "wall": result.wall_s})

    # -- pack

    def unit_pack(self, timed: bool, *, cold: bool) -> None:
        out = self.fresh("pack") / "b.tar.gz"
        out.parent.mkdir(parents=True)
        xdg = self.fresh("xdg") if cold else None
        result, payload = self.pack(out, xdg)
        shutil.rmtree(out.parent)
        if xdg is not None:
            shutil.rmtree(xdg, ignore_errors=True)
        if timed:
            s = self.results.get("pack-cold" if cold else "pack-warm")
            s.wall.append(result.wall_s)
            s.internal.append(float(payload["duration_s"]))
            self.results.fact("pack_identical", payload["sha256"] == self.bundle_sha256)

    def unit_pack_warm(self, timed: bool) -> None:
        self.unit_pack(timed, cold=False)

    def unit_pack_cold(self, timed: bool) -> None:
        self.unit_pack(timed, cold=True)

    def unit_pack_steps(self, timed: bool) -> None:
        out = self.fresh("pack-steps") / "b.tar.gz"
        out.parent.mkdir(parents=True)
        result, times = self.timing_driver(PACK_STEPS, "pack", str(self.project), "-o", str(out), "--json")
        shutil.rmtree(out.parent)
        if timed:
            self.results.breakdowns.setdefault("pack", []).append({**times, "wall": result.wall_s})

    def gzip_levels(self) -> None:
        """What the bundle's compression level buys: the bundle's tar stream compressed at levels 1, 6
        and 9 (the fastest of three runs each, in this process), and gunzipped (install does it once)."""
        raw = self.bundle.read_bytes()
        started = time.perf_counter()
        tar = gzip.decompress(raw)
        out: dict[str, Any] = {"tar": len(tar), "gunzip_s": time.perf_counter() - started}
        for level in (1, 6, 9):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                size = len(gzip.compress(tar, compresslevel=level, mtime=0))
                times.append(time.perf_counter() - started)
            out[str(level)] = (size, min(times))
        self.results.facts["gzip"] = out

    def tls_contexts(self) -> None:
        """What as many TLS contexts as the fetch makes cost alone (a child process, three times)."""
        argv = [self.tools.vk_python, "-c", TLS_DRIVER, str(len(self.lock_wheels))]
        times = [float(self.run("ssl.create_default_context()", argv).stdout) for _ in range(3)]
        self.results.facts["tls_contexts"] = statistics.median(times)

    def record(self, *runs: tuple[str, Run]) -> None:
        for key, result in runs:
            self.results.get(key).wall.append(result.wall_s)


def measure(tools: Tools, work: Path, results: Results) -> None:
    for key, (command, what, part) in LABELS.items():
        if part in results.only:
            results.add(key, f"{command} {what}".rstrip())
    bench = Bench(tools, work, results)
    print("setup: the project, its export, its bundle and the bundle's wheels (not timed)", file=sys.stderr)
    try:
        bench.setup()
    except BenchError as exc:
        results.errors["setup"] = str(exc)
        print(f"FAILED: {exc}", file=sys.stderr)
        return
    plans: dict[str, tuple[list[Callable[[bool], None]], tuple[str, ...]]] = {
        "fetch": ([bench.unit_fetch, bench.unit_pip_download], ("fetch", "fetch-process", "pip-download")),
        "install": (
            [
                bench.unit_install,
                bench.unit_uv,
                bench.unit_pip,
                bench.unit_uv_new_path,
                bench.unit_pylock,
                bench.unit_pip_no_compile,
                bench.unit_install_steps,
            ],
            ("install", "uv", "pip", "uv-new-path"),
        ),
        "pack": (
            [bench.unit_pack_warm, bench.unit_pack_cold, bench.unit_pack_steps],
            ("pack-warm", "pack-cold"),
        ),
    }
    for part in PARTS:
        if part not in results.only:
            continue
        units, keys = plans[part]
        print(f"{part}: one untimed run of each, then {results.rounds} rounds", file=sys.stderr, flush=True)
        try:
            for unit in units:
                unit(False)
            for i in range(results.rounds):
                for unit in benchlib.rotated(i, units):
                    unit(True)
                last = "  ".join(f"{k}={results.get(k).wall[-1] * 1000:.0f}ms" for k in keys)
                benchlib.progress(part, i, results.rounds, last)
            if part == "pack":
                bench.gzip_levels()
            if part == "fetch":
                bench.tls_contexts()
        except BenchError as exc:
            results.errors[part] = str(exc)
            print(f"FAILED: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------- report


def median_of(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def speedup_cell(ours: Series, anchor: Series) -> str:
    """How many times faster ``ours`` is: the anchor's median over ours, and in brackets the median of
    the round-by-round ratios."""
    return f"{anchor.median / ours.median:.2f}x ({benchlib.paired_ratio(anchor, ours):.2f}x)"


def mib(size: float) -> str:
    return f"{size / 2**20:.2f} MiB"


def series_row(results: Results, key: str, *middle: str, target: str = "", met: str = "") -> list[str]:
    s = results.get(key)
    return [
        shown(key),
        ms(s.median),
        f"{ms(min(s.wall))}-{ms(max(s.wall))}",
        ms(s.internal_median),
        *middle,
        target,
        met,
    ]


FETCH_HEADERS = ["command", "median ms", "range ms", "of which in-process ms", "pip download ÷ it"]
FETCH_HEADERS += ["target", "met"]


def fetch_met(results: Results) -> tuple[bool, float]:
    speedup = results.get("pip-download").median / results.get("fetch").median
    return speedup >= FETCH_TARGET, speedup


def fetch_rows(results: Results) -> list[list[str]]:
    ours, process, pip = (results.get(k) for k in ("fetch", "fetch-process", "pip-download"))
    ok, _ = fetch_met(results)
    return [
        series_row(
            results, "fetch", speedup_cell(ours, pip), target=f">= {FETCH_TARGET:g}x faster", met=yesno(ok)
        ),
        series_row(results, "fetch-process", speedup_cell(process, pip), target="(informational)"),
        series_row(results, "pip-download", "", target="anchor"),
    ]


def yesno(ok: bool) -> str:
    return "yes" if ok else "no"


def fetch_verdict(results: Results) -> str:
    ok, speedup = fetch_met(results)
    ours, process, pip = (results.get(k) for k in ("fetch", "fetch-process", "pip-download"))
    return (
        f"**Target, fetching the lock's wheels at least {FETCH_TARGET:g}x faster than `pip download`: "
        f"{'met' if ok else 'not met'}** ({speedup:.2f}x: pip's median {ms(pip.median)} ms over "
        f"venvkeeper's fetch {ms(ours.median)} ms, round by round {benchlib.paired_ratio(pip, ours):.2f}x; "
        f"as whole processes, Python start-up and imports included, "
        f"{pip.median / process.median:.2f}x; {len(ours.wall)} rounds, both cold)."
    )


INSTALL_ROWS = ("uv", "uv-venv", "uv-sync", "pip", "pip-venv", "pip-install", "pip-no-compile")
INSTALL_ROWS += ("uv-new-path", "pylock", "pylock-new-path", "smoke-import")
INSTALL_HEADERS = ["command", "median ms", "range ms", "of which in-process ms", "÷ uv venv + sync"]
INSTALL_HEADERS += ["pip's venv + install ÷ it", "target", "met"]


def install_met(results: Results) -> tuple[bool, float, bool, float]:
    vk, uv, pip = (results.get(k) for k in ("install", "uv", "pip"))
    over_uv, speedup = vk.median / uv.median, pip.median / vk.median
    return over_uv <= UV_TARGET, over_uv, speedup >= PIP_TARGET, speedup


def install_rows(results: Results) -> list[list[str]]:
    vk, uv, pip = (results.get(k) for k in ("install", "uv", "pip"))
    uv_ok, _, pip_ok, _ = install_met(results)
    out = [
        series_row(
            results,
            "install",
            benchlib.ratio_cell(vk, uv),
            speedup_cell(vk, pip),
            target=f"<= {UV_TARGET:g}x uv; >= {PIP_TARGET:g}x faster than pip",
            met=f"uv: {yesno(uv_ok)}; pip: {yesno(pip_ok)}",
        )
    ]
    for key in INSTALL_ROWS:
        kind = "anchor" if key in ("uv", "pip") else "(informational)"
        out.append(series_row(results, key, "", "", target=kind))
    return out


def install_verdicts(results: Results) -> str:
    uv_ok, over_uv, pip_ok, speedup = install_met(results)
    vk, uv, pip, sync = (results.get(k) for k in ("install", "uv", "pip", "uv-sync"))
    return (
        f"**Target, installing the bundle at least {PIP_TARGET:g}x faster than `pip install --no-index "
        f"--find-links`: {'met' if pip_ok else 'not met'}** ({speedup:.2f}x: pip's `uv venv` + `pip "
        f"install` median {ms(pip.median)} ms over venvkeeper's {ms(vk.median)} ms, round by round "
        f"{benchlib.paired_ratio(pip, vk):.2f}x).\n\n"
        f"**Target, at most {UV_TARGET:g}x raw `uv pip sync --offline --no-index --find-links "
        f"--require-hashes`: {'met' if uv_ok else 'not met'}** ({over_uv:.2f}x: venvkeeper's median "
        f"{ms(vk.median)} ms over `uv venv` + `uv pip sync`'s {ms(uv.median)} ms, round by round "
        f"{benchlib.paired_ratio(vk, uv):.2f}x; over the sync alone {vk.median / sync.median:.2f}x; "
        f"{len(vk.wall)} rounds)."
    )


BREAKDOWN_HEADERS = ["step", "median ms", "what it does"]


def breakdown_rows(
    results: Results, part: str, steps: Sequence[tuple[str, str, str, bool]]
) -> list[list[str]]:
    """Per step the median over the timing driver's runs; the nested steps' parent's rest, the
    remainder outside the steps, the in-process total and the driver's wall time."""
    runs = results.breakdowns.get(part, [])

    def med(fn: Callable[[dict[str, float]], float]) -> str:
        return ms(median_of([fn(r) for r in runs]))

    out: list[list[str]] = []
    parent: str | None = None
    nested: list[str] = []

    def close_parent() -> None:
        if parent is not None and nested:
            kids = list(nested)
            out.append(
                [
                    "· rest",
                    med(lambda r, p=parent, k=kids: r.get(p, 0.0) - sum(r.get(n, 0.0) for n in k)),
                    REST.get(parent, "the rest of the step above: finding the interpreter, output dirs"),
                ]
            )

    for function, step, what, is_nested in steps:
        if not is_nested:
            close_parent()
            parent, nested = function, []
            out.append([step, med(lambda r, f=function: r.get(f, 0.0)), what])
        else:
            nested.append(function)
            out.append([f"· {step}", med(lambda r, f=function: r.get(f, 0.0)), what])
    close_parent()
    top = [function for function, _, _, is_nested in steps if not is_nested]
    out.append(
        [
            "other",
            med(lambda r: r["total"] - sum(r.get(f, 0.0) for f in top)),
            "everything else in the command: options, imports done on the way, the workspace and lock "
            "read, the result" + (", the bundle's sha256" if part == "pack" else ", the scratch dir removed"),
        ]
    )
    out.append(["total", med(lambda r: r["total"]), "`cli.main` in the timing driver (in-process)"])
    out.append(["driver wall", med(lambda r: r["wall"]), "the timing driver's process, start to exit"])
    return out


PACK_HEADERS = ["command", "median ms", "range ms", "of which in-process ms", "target"]


def pack_rows(results: Results) -> list[list[str]]:
    return [series_row(results, k, target="report")[:-1] for k in ("pack-warm", "pack-cold")]


SIZE_HEADERS = ["what", "bytes", "MiB", "note"]


def size_rows(results: Results) -> list[list[str]]:
    pack = results.facts.get("pack", {})
    wheels: dict[str, int] = results.facts.get("wheels", {})
    total = sum(wheels.values())
    size = int(pack.get("size", 0))
    return [
        ["bundle", str(size), f"{size / 2**20:.2f}", "the `.tar.gz` venvkeeper pack wrote"],
        [
            "sum of the wheels' sizes",
            str(total),
            f"{total / 2**20:.2f}",
            f"{len(wheels)} wheels: {len(wheels) - len(pack.get('members', []))} from the lock, "
            f"{len(pack.get('members', []))} members built",
        ],
        [
            "bundle ÷ wheels",
            "",
            "",
            f"{size / total:.3f} (gzip over already-compressed wheels, plus pylock.toml and manifest.json)"
            if total
            else "-",
        ],
    ]


GZIP_HEADERS = ["gzip level", "bundle bytes", "÷ level 9", "compress ms"]


def gzip_rows(results: Results) -> list[list[str]]:
    g = results.facts.get("gzip")
    if not g:
        return []
    nine = g["9"][0]
    return [
        [level, str(g[level][0]), f"{g[level][0] / nine:.4f}", ms(g[level][1])] for level in ("1", "6", "9")
    ]


def pack_verdict(results: Results) -> str:
    warm, cold = results.get("pack-warm"), results.get("pack-cold")
    pack = results.facts.get("pack", {})
    total = sum(results.facts.get("wheels", {}).values())
    same = results.facts.get("pack_identical", [])
    return (
        f"**Reported (no target): `venvkeeper pack` takes {ms(warm.median)} ms with the download cache "
        f"warm and {ms(cold.median)} ms with it empty; the bundle is {mib(pack.get('size', 0))} for "
        f"{mib(total)} of wheels ({pack.get('size', 0) / total:.3f}x)**; byte-identical to the first pack: "
        f"{sum(same)} of {len(same)} packs."
        if total
        else "**Reported: no sizes.**"
    )


def install_breakdown(results: Results) -> list[dict[str, float]]:
    return results.breakdowns.get("install", [])


def observations(results: Results) -> list[str]:
    out = list(results.notes)
    f = results.facts
    if "setup" in results.errors:
        return out
    if results.has("fetch"):
        runs = f.get("fetch", [])
        imports = median_of([r["imports"] for r in runs])
        select = median_of([r["select"] for r in runs])
        download = median_of([r["download"] for r in runs])
        contexts = f.get("tls_contexts")
        size = runs[-1]["bytes"] if runs else 0
        rate = size / download / 2**20 if download else 0.0
        out.append(
            f"venvkeeper's fetch and `pip download` got the same {len(runs and runs[-1]['files'])} files "
            f"({mib(size)}); the fetch's medians: imports {ms(imports)} ms (not counted), lock read and "
            f"wheels chosen {ms(select)} ms, `fetch.download` {ms(download)} ms ({rate:.1f} MiB/s; 8 "
            "threads, a new connection per file). urllib makes a new TLS context for every connection "
            f"it is given none for: {len(runs and runs[-1]['files'])} `ssl.create_default_context()` "
            f"calls alone take {ms(contexts)} ms here (a separate process, after the rounds; median of 3)"
        )
    if results.has("install"):
        dists = f.get("dists", [])
        out.append(
            f"every install (venvkeeper, uv, pip) put the same {len(dists)} distributions into its "
            f"environment: {', '.join(dists)}"
        )
        vk, sync, new = (results.get(k) for k in ("install", "uv-sync", "uv-new-path"))
        pip, no_compile = results.get("pip-install"), results.get("pip-no-compile")
        pylock, pylock_new = results.get("pylock"), results.get("pylock-new-path")
        inside = median_of(
            [r.get("venvkeeper.generations.engine:install_pylock", 0.0) for r in install_breakdown(results)]
        )
        out.append(
            f"`uv pip sync` of the requirements from the fixed wheel directory takes {ms(sync.median)} ms, "
            f"from a copy at a new path {ms(new.median)} ms; of the bundle's pylock.toml (venvkeeper's "
            f"command) from a fixed extraction {ms(pylock.median)} ms, from a copy at a new path "
            f"{ms(pylock_new.median)} ms, inside `venvkeeper install` {ms(inside)} ms: uv's cache of local "
            "wheels is keyed by their path, and venvkeeper installs from the wheel store of its --env, a "
            "new path for every new --env"
        )
        growth = median_of(f.get("uv_cache_growth", []))
        if growth is not None:
            out.append(
                f"each `venvkeeper install` into a new --env grew the uv cache by {mib(growth)} (median): "
                "the wheels unpacked again under the new --env's wheel-store paths (a later install into "
                "the same --env reuses them)"
            )
        out.append(
            f"pip writes bytecode by default; with `--no-compile` its install takes {ms(no_compile.median)} "
            f"ms instead of {ms(pip.median)} ms. uv writes none; venvkeeper's smoke check writes the "
            "bytecode of the modules it imports, on purpose, and the manifest seals it before the switch "
            '(docs/incremental-generations.md, "Bytecode, and why it is sealed")'
        )
        outside = vk.median - (vk.internal_median or 0.0)
        out.append(
            f"outside venvkeeper install's in-process run (start-up, imports, output, exit; wall median "
            f"less `duration_s` median): {ms(outside)} ms"
        )
    if results.has("pack"):
        g = f.get("gzip")
        if g:
            out.append(
                f"the bundle's tar stream ({mib(g['tar'])}) gunzips in {ms(g['gunzip_s'])} ms (install "
                f"reads the bundle once); gzip level 9 takes {ms(g['9'][1])} ms where level 6 takes "
                f"{ms(g['6'][1])} ms and level 1 {ms(g['1'][1])} ms, for {g['6'][0] - g['9'][0]} and "
                f"{g['1'][0] - g['9'][0]} bytes more (in this process, the fastest of three runs each)"
            )
    return out


def markdown(results: Results, machine: Mapping[str, str], command: str) -> str:
    python_note = (
        f"`$PY` = `{machine['python_path']}`, given to `venvkeeper install` and `uv venv`; venvkeeper, "
        f"its fetch and pip run on `{machine.get('vk_python', '?')}`"
    )
    out = [
        *benchlib.section_head(SECTION, command, machine, python_note),
        f"- {machine['pip']}",
        "",
        "Wall-clock times in milliseconds (whole process, start to exit, unless the row says "
        'in-process), warm page cache. A "÷ anchor" cell is the command\'s median over the '
        "anchor's; an \"anchor ÷ it\" cell is how many times faster the command is: the anchor's "
        "median over the command's. In brackets: the median of the round-by-round ratios. \"of which "
        'in-process" is the `duration_s` venvkeeper reports in its JSON.',
        "",
    ]
    if "setup" in results.errors:
        out += benchlib.failed_block("Setup failed.", results.errors["setup"])
    for part, title, body in (
        ("fetch", "### Fetching the lock's wheels (cold, from PyPI)", fetch_markdown),
        ("install", "### Installing the bundle offline", install_markdown),
        ("pack", "### pack: time and size", pack_markdown),
    ):
        if part not in results.only or "setup" in results.errors:
            continue
        out += [title, ""]
        if part in results.errors:
            out += benchlib.failed_block("Failed.", results.errors[part])
        else:
            out += body(results)
    out += commands_markdown(results)
    out += benchlib.observation_lines(observations(results))
    out += benchlib.all_rounds_lines(
        (shown(k), s) for k, s in results.series.items() if LABELS[k][2] not in results.errors and s.wall
    )
    return "\n".join(out)


def fetch_markdown(results: Results) -> list[str]:
    return benchlib.table_block(FETCH_HEADERS, fetch_rows(results), fetch_verdict(results))


def install_markdown(results: Results) -> list[str]:
    return [
        *benchlib.table_block(INSTALL_HEADERS, install_rows(results), install_verdicts(results)),
        "#### Where `venvkeeper install`'s time goes",
        "",
        "Medians over one run per round of the same command under a timing driver (each function's time "
        "in-process; not among the timed runs above). venvkeeper install does more than the anchors: it "
        "checks the whole bundle (hashes) before installing anything, extracts it, smoke-checks the new "
        "environment, seals it and switches to it as a new generation.",
        "",
        *benchlib.table_lines(BREAKDOWN_HEADERS, breakdown_rows(results, "install", INSTALL_STEPS)),
        "",
    ]


def pack_markdown(results: Results) -> list[str]:
    return [
        *benchlib.table_block(PACK_HEADERS, pack_rows(results), pack_verdict(results)),
        *benchlib.table_lines(SIZE_HEADERS, size_rows(results)),
        "",
        "What the compression level buys, on this bundle's tar stream (in the bench's process, the fastest "
        "of three runs each):",
        "",
        *benchlib.table_lines(GZIP_HEADERS, gzip_rows(results)),
        "",
        "#### Where `venvkeeper pack`'s time goes (download cache warm)",
        "",
        "Medians over one run per round under the timing driver, as for install.",
        "",
        *benchlib.table_lines(BREAKDOWN_HEADERS, breakdown_rows(results, "pack", PACK_STEPS)),
        "",
    ]


def commands_markdown(results: Results) -> list[str]:
    return [
        "### Commands",
        "",
        f"{results.rounds} rounds. `$P` is a git repository holding the tracked files of `examples/webapp` "
        "with the `[tool.venvkeeper.hooks]` table removed (uv and pip run no hooks; a bundle carries its "
        "project's hooks and install runs them), committed. `$REQ` is what `venvkeeper export $P --format "
        "requirements` wrote (the lock's runtime set, hashed; 18 packages, members left out); `$REQ+` is "
        "`$REQ` plus the two members' bundled wheels pinned by sha256: the bundle's 20 wheels. `$B` is the "
        "bundle of the first `venvkeeper pack $P`; `$W` the directory its wheels were extracted into once. "
        "`$NEW` is a new path every run. Every command runs with a bench-owned `UV_CACHE_DIR` (warm for "
        "uv and for venvkeeper after the untimed runs), `UV_PYTHON_DOWNLOADS=never` and a bench-owned "
        "`XDG_CACHE_HOME` (venvkeeper's download cache). pip runs as `$VKPY -m pip` with "
        "`PIP_CONFIG_FILE=/dev/null` and no `PIP_*` variables but `PIP_CERT` and `PIP_DEFAULT_TIMEOUT` "
        "(this machine's pip.conf adds local indexes and find-links); its `--cache-dir $PC` for installs "
        "is bench-owned and warm.",
        "",
        "```sh",
        "# fetch (both cold: a new cache, a new destination; from PyPI)",
        "$VKPY -c '<lock read; target.target_for(None, ()); locked.runtime_packages(...); "
        "locked.select_wheels(...); fetch.download(artifacts, $NEW, progress=False)>' $P/uv.lock $NEW",
        f"$VKPY -m pip download --only-binary=:all: --index-url {INDEX} --cache-dir $NEW -d $NEW -q -r $REQ",
        "# install (offline)",
        "venvkeeper install $B --env $NEW/.venv --python $PY --json",
        "uv venv --quiet --no-project --python $PY $NEW && "
        "uv pip sync --offline --no-index --find-links $W --require-hashes --python $NEW/bin/python "
        "--quiet $REQ+",
        "uv venv --quiet --no-project --python $PY $NEW && "
        "$VKPY -m pip --python $NEW/bin/python install --no-index --find-links $W --cache-dir $PC "
        "-q -r $REQ+",
        "# informational: the same pip install --no-compile; the same uv pip sync with --find-links $W2,",
        "# a copy of $W; venvkeeper's own sync of the bundle's pylock.toml, from $X (the whole bundle",
        "# extracted once) and from $X2 (a copy of $X), in a new uv venv; the smoke check's imports",
        "UV_OFFLINE=1 uv pip sync --offline --no-index --preview-features pylock --python $NEW/bin/python "
        "--quiet $X/venvkeeper-bundle/pylock.toml",
        "PYTHONDONTWRITEBYTECODE=1 $NEW/bin/python -I -c 'import sitecore, webapp'  # in uv's env",
        "# pack",
        "venvkeeper pack $P -o $NEW/b.tar.gz --json                      # download cache warm",
        "XDG_CACHE_HOME=$NEW venvkeeper pack $P -o $NEW/b.tar.gz --json  # download cache empty",
        "```",
        "",
        "Each part runs its units once untimed, then the rounds; a round runs every unit once, the first "
        "rotating from round to round: fetch (venvkeeper, pip), install (venvkeeper; uv and the smoke "
        "imports; pip; uv from a new path; uv of pylock.toml from a fixed and a new path; pip --no-compile; "
        "venvkeeper under the timing driver), pack (warm; cold; under the timing "
        "driver). The environments, caches and files a run made are removed after it, untimed. Run-to-run "
        "noise on this machine is large, and the fetch depends on the network; compare ratios from the "
        "same run.",
        "",
    ]


def print_results(results: Results) -> None:
    if "setup" in results.errors:
        print(f"FAILED (setup):\n{results.errors['setup']}\n")
        return
    for part in PARTS:
        if part not in results.only:
            continue
        print(part)
        if part in results.errors:
            print(f"FAILED:\n{results.errors[part]}\n")
        elif part == "fetch":
            print(
                benchlib.text_table(FETCH_HEADERS, fetch_rows(results)),
                "",
                fetch_verdict(results),
                "",
                sep="\n",
            )
        elif part == "install":
            print(benchlib.text_table(INSTALL_HEADERS, install_rows(results)), "", sep="\n")
            print(install_verdicts(results), "", sep="\n")
            rows = breakdown_rows(results, "install", INSTALL_STEPS)
            print(benchlib.text_table(BREAKDOWN_HEADERS, rows), "", sep="\n")
        else:
            print(
                benchlib.text_table(PACK_HEADERS, pack_rows(results)), "", pack_verdict(results), "", sep="\n"
            )
            print(benchlib.text_table(SIZE_HEADERS, size_rows(results)), "", sep="\n")
            print(benchlib.text_table(GZIP_HEADERS, gzip_rows(results)), "", sep="\n")
            rows = breakdown_rows(results, "pack", PACK_STEPS)
            print(benchlib.text_table(BREAKDOWN_HEADERS, rows), "", sep="\n")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each part (default 5)")
    parser.add_argument(
        "--only", action="append", choices=PARTS, help="run only this part (repeatable; default: all)"
    )
    benchlib.add_common_options(parser, "bundle", python_help="interpreter given to install and uv venv")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work, tools = benchlib.start(args, PROG)
    machine = {**tools.machine(), "pip": benchlib.capture([tools.vk_python, "-m", "pip", "--version"])}
    results = Results(args.rounds, tuple(args.only or PARTS))

    benchlib.measure(lambda: measure(tools, work, results), tools, machine, work, keep_work=args.keep_work)
    print_results(results)
    benchlib.conclude(
        observations(results),
        args.write,
        "bundle_bench.py",
        argv,
        SECTION,
        lambda command: markdown(results, machine, command),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
