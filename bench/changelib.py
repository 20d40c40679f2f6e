"""What the change benchmarks of issue 14 share (bump_bench, corpus_bench, scale_bench): a
comparison of venvkeeper against its anchors and its table, the uv command that installs what a
deploy installs, the e2e corpus's pinned projects checked out in git, one member's code changed
round by round against ``uv sync --reinstall-package`` into an existing environment, and the disk
an environment's files take with each inode counted once.

Only the command lines of ``venvkeeper`` and ``uv`` are driven, so the scripts measure any build of
venvkeeper (a whole new generation per change, or a clone of the live one plus a delta) alike.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
from benchlib import REPO, BenchError, Run, Tools, ms, run
from deploy_bench import Series

# The e2e corpus (tests/support/corpus.py) is the one list of pinned public projects: the benchmarks
# take their pins (name, version, sha256), download and checkout from it rather than keep a copy.
sys.path.insert(0, str(REPO / "tests"))
from support import corpus

# What a deploy installs (README: "the uv equivalent is uv sync --frozen --all-packages
# --no-default-groups --group NAME..."), non-editable as venvkeeper installs members.
UV_SYNC = ("sync", "--frozen", "--all-packages", "--no-default-groups", "--no-editable")
# The member a round changes and the file it appends to, per corpus project (``--member`` and
# ``--member-file`` name others).
MEMBERS = {
    "flask": ("flask", "src/flask/__init__.py"),
    "mcp": ("mcp", "src/mcp/__init__.py"),
}
HEADERS = [
    "scenario",
    "venvkeeper ms",
    "of which in-process ms",
    "anchor",
    "anchor ms",
    "ratio vk/anchor",
    "per-round ratio, median",
    "target",
    "within",
]


# --------------------------------------------------------------------------- comparisons


@dataclass
class Comparison:
    """venvkeeper's timings against its anchors; ``anchors[0]`` is the one the target is against."""

    key: str
    title: str
    rounds: int
    target: float
    venvkeeper: Series = field(default_factory=lambda: Series(""))
    anchors: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def rows(comparisons: Sequence[Comparison]) -> list[list[str]]:
    """A row per anchor of each comparison, under ``HEADERS``."""
    out = []
    for c in comparisons:
        if c.error or not c.anchors:
            out.append([c.title, "FAILED", "-", "-", "-", "-", "-", f"<= {c.target}x", "-"])
            continue
        vk = c.venvkeeper
        for n, anchor in enumerate(c.anchors):
            ratio = vk.median / anchor.median
            first = n == 0
            out.append(
                [
                    c.title if first else "",
                    ms(vk.median) if first else "",
                    ms(vk.internal_median) if first else "",
                    anchor.label,
                    ms(anchor.median),
                    f"{ratio:.2f}x",
                    f"{benchlib.paired_ratio(vk, anchor):.2f}x",
                    f"<= {c.target}x" if first else "(informational)",
                    ("yes" if ratio <= c.target else "no") if first else "",
                ]
            )
    return out


def table_section(comparisons: Sequence[Comparison]) -> list[str]:
    """The ratio paragraph, the table and each failure's output."""
    out = [
        "Wall-clock medians in milliseconds (whole process, start to exit). The ratio is venvkeeper's "
        "median over the anchor's; the per-round ratio is the median of the ratios of the runs made "
        'back to back in the same round. "of which in-process" is the `duration_s` venvkeeper reports '
        "in its JSON.",
        "",
        *benchlib.table_lines(HEADERS, rows(comparisons)),
        "",
    ]
    for c in comparisons:
        if c.error:
            out += benchlib.failed_block(f"{c.title}: failed.", c.error)
    return out


def tail_section(comparisons: Sequence[Comparison], more_notes: Sequence[str] = ()) -> list[str]:
    """The Observations (each comparison's notes, then ``more_notes``) and All rounds subsections."""
    notes = [f"{c.title}: {n}" for c in comparisons for n in c.notes]
    out = benchlib.observation_lines([*notes, *more_notes])
    out += benchlib.all_rounds_lines(
        (f"{c.title} / {s.label}", s) for c in comparisons if not c.error for s in [c.venvkeeper, *c.anchors]
    )
    return out


def print_comparisons(comparisons: Sequence[Comparison]) -> None:
    print(benchlib.text_table(HEADERS, rows(comparisons)))
    for c in comparisons:
        for note in c.notes:
            print(f"note: {c.title}: {note}")
        if c.error:
            print(f"\n{c.title} FAILED:\n{c.error}")


def attempt(comparison: Comparison, body: Any) -> Comparison:
    """``body(comparison)``; a failure is kept in ``comparison.error`` and printed."""
    try:
        body(comparison)
    except BenchError as exc:
        comparison.error = str(exc)
        print(f"  FAILED: {exc}", file=sys.stderr)
    return comparison


def round_done(name: str, i: int, rounds: int, series: Mapping[str, Series]) -> None:
    """The round's times on stderr, each after its key in ``series``."""
    benchlib.progress(name, i, rounds, "  ".join(f"{k}={ms(s.wall[-1])}ms" for k, s in series.items()))


# --------------------------------------------------------------------------- the two tools


def vk_deploy(
    tools: Tools, project: Path, env_path: Path, env: Mapping[str, str], *extra: str
) -> tuple[Run, dict[str, Any]]:
    """``venvkeeper deploy --json``; an error unless it exits 0 and reports ``ok``."""
    return benchlib.deploy(tools, project, env_path, env, *extra, cwd=env_path.parent, fail=benchlib.failure)


def uv_sync(
    tools: Tools, project: Path, env_path: Path, env: Mapping[str, str], flags: Sequence[str], *extra: str
) -> Run:
    """``uv <flags> <extra> --project P --python PY`` with ``UV_PROJECT_ENVIRONMENT=env_path``."""
    argv = [tools.uv, *flags, *extra, "--project", str(project), "--python", tools.python]
    env_path.parent.mkdir(parents=True, exist_ok=True)
    result = run(argv, {**env, "UV_PROJECT_ENVIRONMENT": str(env_path)}, env_path.parent)
    if result.returncode != 0:
        raise benchlib.failure("uv sync", result, f" (UV_PROJECT_ENVIRONMENT={env_path})")
    return result


def site_packages(env_path: Path) -> Path:
    """The environment's site-packages (through the ``--env`` symlink, if it is one)."""
    found = sorted(env_path.resolve().glob("lib/python*/site-packages"))
    if not found:
        raise BenchError(f"{env_path}: no lib/python*/site-packages")
    return found[0]


def installed_copy(env_path: Path, source_file: str) -> Path | None:
    """The installed file that ``source_file`` (relative to the project) became: the longest tail
    of its path that exists in site-packages (``src/mcp/__init__.py`` -> ``mcp/__init__.py``)."""
    parts = Path(source_file).parts
    root = site_packages(env_path)
    for k in range(len(parts) - 1):
        candidate = root.joinpath(*parts[k:])
        if candidate.is_file():
            return candidate
    return None


def has_marker(env_path: Path, source_file: str, marker: str) -> bool:
    found = installed_copy(env_path, source_file)
    return found is not None and marker in found.read_text(errors="replace")


# --------------------------------------------------------------------------- the e2e corpus


def corpus_keys() -> list[str]:
    return [p.key for p in corpus.CORPUS if not p.generated]


def corpus_project(key: str) -> Any:
    return next(p for p in corpus.CORPUS if p.key == key)


def fetch_environ(home: Path) -> dict[str, str]:
    """pip and git for fetching and committing a corpus project: the public index only (this
    machine's pip.conf adds local find-links), a bench identity for the commit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "GIT_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        HOME=str(home),
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@localhost",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@localhost",
        GIT_CONFIG_NOSYSTEM="1",
    )
    for name in ("PIP_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def checkout_corpus(key: str, cache: Path, dest: Path) -> tuple[Any, Path]:
    """The corpus project ``key``: its pinned sdist (in ``cache/sdists``, downloaded with pip when
    missing, sha256 checked) unpacked and committed to a new git repository at ``dest``, tagged
    where its version comes from a tag (as the e2e suite does)."""
    project = corpus_project(key)
    home = dest.parent / "home"
    home.mkdir(parents=True, exist_ok=True)
    environ = fetch_environ(home)
    try:
        sdist = corpus.fetch_sdist(project, cache, environ)
        corpus.checkout(project, sdist, dest, environ)
    except AssertionError as exc:  # support.process.CommandError, a sha256 mismatch
        raise BenchError(f"fetching corpus project {key}: {exc}") from exc
    return project, dest


def locked_count(project_dir: Path) -> int:
    return (project_dir / "uv.lock").read_text().count("\n[[package]]\n")


# --------------------------------------------------------------------------- one member changed


@dataclass
class MemberChange:
    """One member's code changed, round by round: venvkeeper deploys ``project`` into ``vk_env``;
    uv syncs a copy of it (``uv_project``, so that uv's in-tree builds never touch venvkeeper's
    input) into ``uv_env`` with ``--reinstall-package member``. The change (a comment line appended
    to ``member_file``) is not committed: venvkeeper reads the working tree, and a version from git
    stays the tag's (hatch-vcs / uv-dynamic-versioning ignore a dirty tree by default)."""

    tools: Tools
    project: Path
    uv_project: Path
    member: str
    member_file: str
    groups: Sequence[str]
    env: Mapping[str, str]
    vk_env: Path
    uv_env: Path
    keep: int
    pinned: Any = None  # the corpus entry (support.corpus.CorpusProject)
    rebuilt: list[str] = field(default_factory=list)
    generations: list[str] = field(default_factory=list)

    def group_args(self) -> list[str]:
        return [arg for g in self.groups for arg in ("--group", g)]

    def first_deploys(self) -> tuple[Run, Run]:
        """The untimed first deploy and first sync (they build every member)."""
        if not (self.project / self.member_file).is_file():
            raise BenchError(f"{self.member_file}: no such file in the project; name one with --member-file")
        shutil.copytree(self.project, self.uv_project, symlinks=True)
        for path in (self.vk_env, self.uv_env):
            path.parent.mkdir(parents=True, exist_ok=True)
        vk, _ = vk_deploy(self.tools, self.project, self.vk_env, self.env, *self.group_args())
        uv = uv_sync(self.tools, self.uv_project, self.uv_env, self.env, UV_SYNC, *self.group_args())
        return vk, uv

    def change(self, marker: str) -> None:
        for root in (self.project, self.uv_project):
            path = root / self.member_file
            path.write_text(path.read_text() + f"# {marker}\n")

    def run_vk(self, marker: str) -> tuple[Run, dict[str, Any]]:
        result, payload = vk_deploy(
            self.tools, self.project, self.vk_env, self.env, *self.group_args(), "--keep", str(self.keep)
        )
        if not payload.get("changed") or not has_marker(self.vk_env, self.member_file, marker):
            raise BenchError(f"the deploy did not install the changed {self.member_file}:\n{result.stdout}")
        self.rebuilt.append(",".join(payload.get("rebuilt") or []) or "-")
        self.generations.append(str(payload.get("generation")))
        return result, payload

    def run_uv(self, marker: str) -> Run:
        extra = [*self.group_args(), "--reinstall-package", self.member]
        result = uv_sync(self.tools, self.uv_project, self.uv_env, self.env, UV_SYNC, *extra)
        if not has_marker(self.uv_env, self.member_file, marker):
            raise BenchError(f"uv sync --reinstall-package {self.member} did not install the changed file")
        return result

    def measure(self, comparison: Comparison) -> None:
        """One untimed round, then ``comparison.rounds`` interleaved rounds."""
        vk = Series(f"venvkeeper deploy --keep {self.keep} (existing --env)")
        uv = Series(f"uv sync --reinstall-package {self.member}, existing env")
        for i in range(-1, comparison.rounds):
            marker = f"bench round {i} {uuid.uuid4().hex}"
            self.change(marker)
            timings: dict[str, float] = {}

            def do_vk(marker: str = marker, timings: dict[str, float] = timings) -> None:
                result, payload = self.run_vk(marker)
                timings["vk"], timings["vk_in"] = result.wall_s, float(payload["duration_s"])

            def do_uv(marker: str = marker, timings: dict[str, float] = timings) -> None:
                timings["uv"] = self.run_uv(marker).wall_s

            for step in benchlib.rotated(max(i, 0), [do_vk, do_uv]):
                step()
            if i < 0:
                continue  # the untimed round: page cache, uv's build environments
            vk.wall.append(timings["vk"])
            vk.internal.append(timings["vk_in"])
            uv.wall.append(timings["uv"])
            round_done(comparison.key, i, comparison.rounds, {"vk": vk, "uv": uv})
        comparison.venvkeeper, comparison.anchors = vk, [uv]
        kinds = sorted(set(self.rebuilt[1:]))
        comparison.notes.append(f"venvkeeper `rebuilt` per round: {' / '.join(kinds)}")
        comparison.notes.append(
            f"every round's change (a comment line in `{self.member_file}`) was in the installed copy, "
            "for both tools (checked after each run)"
        )


# --------------------------------------------------------------------------- disk


@dataclass
class Disk:
    """Bytes under some paths, every inode counted once: ``size`` of the regular files (apparent)
    and ``allocated`` of every inode (blocks: what ``du -s`` over the same paths reports)."""

    size: int = 0
    allocated: int = 0
    files: int = 0


def disk_usage(paths: Iterable[Path]) -> Disk:
    """``Disk`` of ``paths`` (files or directory trees) together; an inode seen twice (a hard link,
    within or across the paths) counts once. Symlinks are not followed."""
    seen: set[tuple[int, int]] = set()
    disk = Disk()

    def add(path: str) -> None:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        disk.allocated += st.st_blocks * 512
        if stat.S_ISREG(st.st_mode):
            disk.size += st.st_size
            disk.files += 1

    for root in paths:
        if not os.path.lexists(root):
            continue
        add(str(root))
        if root.is_symlink() or not root.is_dir():
            continue
        for here, dirs, names in os.walk(root):
            for name in dirs + names:
                add(os.path.join(here, name))
    return disk


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f}"


# --------------------------------------------------------------------------- a corpus project's options


def add_project_options(parser: Any, default: str) -> None:
    """--project (a key of the e2e corpus), --member, --member-file, --group and --sdist-cache."""
    parser.add_argument(
        "--project", choices=corpus_keys(), default=default, help=f"e2e corpus project (default {default})"
    )
    parser.add_argument("--member", help="the member a round changes (default: per project, see MEMBERS)")
    parser.add_argument("--member-file", help="the file a round appends to, relative to the project")
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        help="dependency group to deploy too (repeatable; default none)",
    )
    parser.add_argument(
        "--sdist-cache",
        type=Path,
        default=corpus.cache_root(os.environ),
        help="where the pinned sdists are kept (default: the e2e suite's cache, $VENVKEEPER_E2E_CACHE "
        "or ~/.cache/venvkeeper-e2e)",
    )


def member_change(tools: Tools, work: Path, args: Any, keep: int) -> MemberChange:
    """The corpus project of ``args`` checked out under ``work``, ready for ``first_deploys``."""
    member, member_file = MEMBERS.get(args.project, (None, None))
    member, member_file = args.member or member, args.member_file or member_file
    if not member or not member_file:
        raise BenchError(f"{args.project}: name the member and its file with --member and --member-file")
    print(f"checking out corpus project {args.project} (not timed)", file=sys.stderr, flush=True)
    pinned, project = checkout_corpus(args.project, args.sdist_cache, work / "src" / args.project)
    return MemberChange(
        tools=tools,
        project=project,
        uv_project=work / "src-uv" / args.project,
        member=member,
        member_file=member_file,
        groups=list(args.group),
        env=benchlib.bench_env(work / "uv-cache"),
        vk_env=work / "envs" / "vk" / ".venv",
        uv_env=work / "envs" / "uv" / ".venv",
        keep=keep,
        pinned=pinned,
    )


def project_facts(change: MemberChange) -> list[str]:
    """What the report says about the project: its pin, its lock and what the deploy installed."""
    dists = sorted(p.name for p in site_packages(change.vk_env).glob("*.dist-info"))
    groups = ", ".join(change.groups) or "none"
    return [
        f"project: {change.pinned.filename} (sha256 {change.pinned.sha256[:12]}..., pinned in "
        "tests/support/corpus.py), "
        f"{locked_count(change.project)} packages locked; deployed with groups: {groups}; "
        f"{len(dists)} distributions installed",
        f"a round changes member `{change.member}` (appends a comment line to `{change.member_file}`)",
    ]
