"""``venvkeeper deploy --lock pylock.toml --env PATH`` (and ``install pylock.toml``): a PEP 751 lock alone.

For a project with no ``pyproject.toml`` and no ``uv.lock`` (a hand-kept ``requirements.txt``
resolved into a ``pylock.toml``). The lock is selected for the interpreter the environment will run
(:mod:`venvkeeper.project.pylock`), its wheels are fetched by the caller's ``fetch`` (local files
and cached downloads need no network; every file is checked against the lock's sha256 first), and
uv installs exactly them with ``--require-hashes`` into a new generation, which the one transaction
finishes (smoke check, sealed manifest), switches to, runs the hooks in (switching back when one
fails) and prunes, as for any deploy.

A new generation is always installed from nothing, never as a clone of the live one: uv keeps an
installed distribution of the same version even when its wheel changed (astral-sh/uv#4412), and a
hand-edited lock may change a wheel without changing its version.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from venvkeeper import __version__
from venvkeeper.core.config import DEFAULT_HOOK_TIMEOUT, DEFAULT_KEEP
from venvkeeper.core.errors import InterpreterError
from venvkeeper.core.names import canonicalize_name
from venvkeeper.deploy.decision import NOTHING_TO_REPAIR, Repair
from venvkeeper.deploy.repair import described, plan_repair
from venvkeeper.gateways.uv import cache_scope, uv_version
from venvkeeper.generations import build, engine, smoke, transaction
from venvkeeper.generations.layout import GenerationState, Layout, now_iso, refuse_inside
from venvkeeper.generations.results import CheckResult, DeployResult
from venvkeeper.project import plan, wheeltags
from venvkeeper.project import pylock as locks
from venvkeeper.sbom import facts as sbomfacts
from venvkeeper.sbom import generation as sbomgen

__all__ = ["Fetch", "LockRequest", "deploy_lock", "selected_for"]

# The caller's fetcher: every wheel as a local file (filename -> path), each checked against its sha256.
Fetch = Callable[[Sequence[locks.LockedWheel], Path], Mapping[str, Path]]


@dataclass(frozen=True)
class LockRequest:
    lock: Path
    env: Path
    command: str = "deploy"  # or "install": what the result and messages say
    groups: tuple[str, ...] | None = None  # PEP 751 dependency-groups; None: the lock's default-groups
    python: str | None = None
    keep: int | None = None
    wait: bool = True
    hooks: tuple[str, ...] = ()
    hooks_dir: Path | None = None
    rollback: bool = True
    check: bool = False
    repair: bool = False  # verify the live generation first; any finding forces a new one


@dataclass(frozen=True)
class Selected:
    """The lock selected for one interpreter, and the digest a same deploy compares."""

    interpreter: Path
    wheels: list[locks.LockedWheel]
    inputs: str

    @property
    def packages(self) -> dict[str, str]:
        return {w.name: w.version for w in self.wheels}


def selected_for(lock_path: Path, python: str | None, groups: Sequence[str] | None) -> Selected:
    """What ``lock_path`` installs on the interpreter ``python`` names (else the one uv finds)."""
    lock = locks.load(lock_path)
    interpreter = engine.find_python(Path("/"), python)
    # One run of the interpreter: its markers, and what its wheel tags are built from (its own
    # implementation, ABI and platform: not venvkeeper's, even for the same minor).
    found = smoke.interpreter_facts(interpreter)
    if found is None:
        raise InterpreterError(f"{interpreter}: does not run", hint="pass --python /path/to/python")
    markers, facts = found
    tags = wheeltags.tags_for(wheeltags.TagFacts.from_json(facts))
    wheels = locks.select(lock_path, lock, markers, tags, groups)
    identity = transaction.interpreter_identity(interpreter) or {"path": str(interpreter)}
    digest = hashlib.sha256(lock_path.read_bytes())
    digest.update(json.dumps([sorted(groups or ()), identity.get("realpath")]).encode())
    return Selected(interpreter, wheels, digest.hexdigest())


def deploy_lock(request: LockRequest, fetch: Fetch) -> DeployResult:
    started = time.monotonic()
    layout = Layout.for_env(request.env)
    cwd = request.hooks_dir or request.lock.parent
    if request.hooks_dir is not None:
        refuse_inside(layout.env, request.hooks_dir, "the --hooks-dir checkout")
    chosen = selected_for(request.lock, request.python, request.groups)
    inputs = hashlib.sha256(f"{chosen.inputs}\0{json.dumps(request.hooks)}".encode()).hexdigest()
    if request.check:
        return _check(layout, request, chosen, inputs, started)
    with transaction.claim(layout, wait=request.wait):
        target = transaction.target_for(layout, plan.Options(), request.command)
        with cache_scope(layout.home / "uv-cache"):  # the cache a repair drops damaged entries from
            found = _repair(layout, target, request, chosen) if request.repair else None
        if _same(target, inputs, found):
            return _unchanged(request, layout, target, found, started)
        with cache_scope(layout.home / "uv-cache"):
            files = fetch(chosen.wheels, request.lock)
            switched = transaction.build_and_switch(
                layout,
                target,
                DEFAULT_KEEP if request.keep is None else request.keep,
                functools.partial(_populate, request, chosen, files, inputs),
                lambda number, undo: (
                    transaction.run_post_deploy(
                        request.hooks,
                        cwd,
                        DEFAULT_HOOK_TIMEOUT,  # as [tool.venvkeeper.hooks] timeout's default
                        layout,
                        number,
                        undo,
                        rollback=request.rollback,
                    )
                    if request.hooks
                    else []
                ),
                adopt=target.kind == "venv",
            )
    damaged = found is not None and found.findings > 0
    done = f"installed {request.lock.name} ({len(chosen.wheels)} wheels, hashes checked)"
    reason = f"{'repaired: ' if damaged else ''}{done}"
    result = transaction.switched_result(request.command, layout, switched, reason, started)
    return _with_repair(result, found)


def _same(target: transaction.Target, inputs: str, found: Repair | None) -> bool:
    """The live generation is this lock on this interpreter, healthy, and (--repair) verify found
    nothing in it: there is nothing to do."""
    live = target.live
    damaged = found is not None and found.findings > 0
    return live is not None and target.healthy and live.inputs_sha256 == inputs and not damaged


def _unchanged(
    request: LockRequest, layout: Layout, target: transaction.Target, found: Repair | None, started: float
) -> DeployResult:
    result = DeployResult(
        request.command,
        env=str(layout.env),
        generation=target.live_number,
        previous=target.live_number,
        reason=_unchanged_reason(request, found),
        duration_s=time.monotonic() - started,
    )
    return _with_repair(result, found)


def _unchanged_reason(request: LockRequest, found: Repair | None) -> str:
    # As a uv.lock deploy says it: --repair looked, and found nothing (or only rewrote the SBOM).
    looked = "" if found is None else NOTHING_TO_REPAIR
    if found is not None and found.sbom:
        looked = f"{found.sbom}; verify found nothing else to repair; "
    return f"{looked}{request.lock.name} is already the live generation"


def _repair(
    layout: Layout, target: transaction.Target, request: LockRequest, chosen: Selected, *, clean: bool = True
) -> Repair | None:
    """--repair: what verify finds in the live generation (uv's cache entries the damaged files are hard
    links to are dropped, so the new generation gets fresh bytes); its SBOM, when missing or altered,
    is rewritten from this lock's wheels if that gives the bytes its record names."""
    entries = lambda: (sbom_entries(request.lock, chosen.wheels), None)  # noqa: E731 - read only if needed
    return plan_repair(layout, target, clean=clean, sbom_lock=entries)


R = TypeVar("R", bound=DeployResult)


def _with_repair(result: R, found: Repair | None) -> R:
    """--repair's findings on the result, as a uv.lock deploy reports them (converge._deploy)."""
    if found is not None:
        result.repair_findings = found.findings + bool(found.sbom)  # a rewritten SBOM was a finding too
        result.repaired, result.cache_refreshed = list(found.affected), list(found.poisoned)
    return result


def _check(
    layout: Layout, request: LockRequest, chosen: Selected, inputs: str, started: float
) -> CheckResult:
    """--check: what the deploy would do; nothing is written (no state directory, no lock).

    With --repair, the live generation is verified as the deploy would verify it (uv's cache entries
    only named, not dropped): any finding means the deploy would build a new generation, and the
    reason names the findings."""
    target = transaction.target_for(layout, plan.Options(), request.command)
    found = None
    if request.repair:
        # The deploy's cache, to tell which damaged files are hard links into it; never created here.
        fallback = layout.home / "uv-cache"
        with cache_scope(fallback if fallback.is_dir() else None):
            found = _repair(layout, target, request, chosen, clean=False)
    same = _same(target, inputs, found)
    before = transaction.packages_before(layout, target, in_place=False, adopt=target.kind == "venv")
    name = request.lock.name
    if same:
        reason = _unchanged_reason(request, found)
    elif found is not None and found.findings:
        reason = f"{described(found)}; a new generation would be built from {name}"
    else:
        reason = f"would install {name}"
    result = CheckResult(
        request.command,
        env=str(layout.env),
        changed=not same,
        generation=target.live_number,
        previous=target.live_number,
        packages=plan.diff_packages({}, {}) if same else plan.diff_packages(before, chosen.packages),
        reason=reason,
        planned_hooks=[] if same else list(request.hooks),
        duration_s=time.monotonic() - started,
    )
    return _with_repair(result, found)


def _populate(
    request: LockRequest,
    chosen: Selected,
    files: Mapping[str, Path],
    inputs: str,
    env_dir: Path,
    number: int,
    manifest_path: Path,
) -> GenerationState:
    """A venv on the chosen interpreter, the lock's wheels installed by uv with their hashes required."""
    sbomgen.preload()  # cyclonedx-python-lib loads while uv installs: the SBOM is written after the seal
    engine.create_venv(env_dir, str(chosen.interpreter), allow_existing=env_dir.is_dir())
    python = env_dir / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="pylock-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(locks.requirements_text(files, chosen.wheels), encoding="utf-8")
        with build.installing(env_dir, f"installing {request.lock.name}"):
            if chosen.wheels:
                engine.install_requirements(
                    python, ["--offline", "--require-hashes", "-r", str(requirements)]
                )
    done = build.finish(env_dir, manifest_path, [], {})
    identity = transaction.interpreter_identity(chosen.interpreter) or {"path": str(chosen.interpreter)}
    state = GenerationState(
        number=number,
        kind="pylock",
        created=now_iso(),
        packages=done.packages,
        project=None,
        lock_sha256=hashlib.sha256(request.lock.read_bytes()).hexdigest(),
        inputs_sha256=inputs,
        interpreter=build.interpreter_record(identity, done.report),
        options={"pylock": str(request.lock.resolve()), "groups": list(request.groups or ())},
        uv_version=uv_version(),
        manifest_sha256=done.manifest_sha256,
        venvkeeper_version=__version__,
    )
    raw = sbomgen.build(
        env_dir, done.manifest, state.to_json(), sbom_entries(request.lock, chosen.wheels), None
    )
    state.sbom_sha256 = sbomgen.write(sbomgen.sbom_path(manifest_path), raw)
    return state


def _public(url: str) -> str:
    """``url`` as an SBOM may show it: no user or password, no query, no fragment."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(
        parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="")
    )


def sbom_entries(
    lock_path: Path, wheels: Sequence[locks.LockedWheel]
) -> dict[tuple[str, str], sbomfacts.LockEntry]:
    """The chosen wheels as the SBOM's lock entries: each wheel's file and sha256 as locked; from an
    index (a registry: a plain pypi purl, the index as a property), a URL of its own (the purl's
    download_url), or a local path (a generic purl)."""
    packages = {canonicalize_name(p.name): p for p in locks.load(lock_path).packages}
    found: dict[tuple[str, str], sbomfacts.LockEntry] = {}
    qualifiers: tuple[tuple[str, str], ...]
    for wheel in wheels:
        package = packages.get(wheel.name)
        index = package.index if package is not None else None
        depends = tuple(
            sorted(
                {
                    canonicalize_name(str(d["name"]))
                    for d in (package and package.dependencies) or ()
                    if d.get("name")
                }
            )
        )
        if wheel.local is not None:
            source, qualifiers, index = "path", (), None
        elif index:
            source, qualifiers, index = "registry", (), _public(index).rstrip("/")
        else:
            source, qualifiers = "url", (("download_url", _public(wheel.location)),)
        found[wheel.name, wheel.version] = sbomfacts.LockEntry(
            wheel.name,
            wheel.version,
            source,
            qualifiers,
            (sbomfacts.Artifact(wheel.filename, wheel.sha256, "wheel"),),
            depends=depends,
            index=index,
        )
    return found
