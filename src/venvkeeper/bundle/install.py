"""``venvkeeper install BUNDLE --env PATH``: a bundle into a new generation, with no network at all.

The bundle is checked whole before anything is installed (:func:`bundle.read_bundle`): every entry's
kind and name, every hash against the manifest, the signature when a key is given, every manifest
field install acts on, every file its ``pylock.toml`` names (each must be one of the bundle's
wheels), and the target tags against this interpreter. That one pass also writes the wheels the
wheel store lacks into a scratch directory as it hashes them (once the manifest, and with a key its
signature, has been read and verified); only when the whole pass succeeds are they renamed into the
store (:mod:`venvkeeper.bundle.store`). uv then installs, offline, the bundle's ``pylock.toml``
pointed at the store's stable paths. The environment is finished (smoke-checked, sealed) and switched
to by the same generation transaction as ``deploy`` (:mod:`venvkeeper.generations.build`,
:mod:`venvkeeper.generations.transaction`).

What does not depend on the bundle runs beside that pass, in a thread: uv located (a ``uv
--version``) and the ``--python`` interpreter asked what it is.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging import tags

from venvkeeper import __version__
from venvkeeper.bundle import archive as bundle
from venvkeeper.bundle import store, unpack
from venvkeeper.bundle.check import ManifestFields
from venvkeeper.core import files as fsutil
from venvkeeper.core import progress
from venvkeeper.core.config import DEFAULT_KEEP
from venvkeeper.core.errors import ConfigError, InterpreterError
from venvkeeper.core.lazy import lazy
from venvkeeper.gateways.uv import cache_scope, cache_used, find_uv, uv_version

# Steps are called through their modules (engine.create_venv, transaction.build_and_switch...): the
# install benchmark (bench/bundle_bench.py) times them by wrapping the module's function.
from venvkeeper.generations import build, delta, engine, transaction, wheels
from venvkeeper.generations.clone import Clone, CloneRefusedError
from venvkeeper.generations.layout import GenerationState, Layout, now_iso, read_packages, refuse_inside
from venvkeeper.generations.results import HOOKS_SKIPPED, DeployResult
from venvkeeper.generations.transaction import (
    Target,
    claim,
    interpreter_identity,
    run_post_deploy,
    target_for,
)
from venvkeeper.project import interpreters, plan
from venvkeeper.project.interpreters import Interpreter
from venvkeeper.sbom import generation as sbomgen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.core import signing
else:
    # cryptography only for a bundle installed with --public-key.
    signing = lazy("venvkeeper.core.signing")

__all__ = ["already_installed", "check_target", "hooks_note", "install", "interpreter_for"]


def interpreter_for(request: str | None, target_python: str) -> Path:
    """``--python`` (a path or a version), else an interpreter of the bundle's minor version."""
    if request and "/" in request:
        path = Path(os.path.abspath(request))
        if not os.access(path, os.X_OK):
            raise InterpreterError(
                f"{path}: not an executable interpreter", hint="pass --python /path/to/python"
            )
        return path
    return engine.find_python(Path("/"), request or target_python)


def check_target(fields: ManifestFields, python: Path, seen: Interpreter | None) -> None:
    """Refuse a bundle made for another Python minor or platform, naming both sets of tags.
    ``seen``: what ``python`` said it is (:func:`interpreters.probe`), None when it did not run."""
    if seen is None:
        raise InterpreterError(f"{python}: does not run", hint="pass --python /path/to/python")
    minor = ".".join(seen.version.split(".")[:2])
    implementation = "cp" if seen.implementation == "cpython" else seen.implementation
    here_platforms = list(tags.platform_tags())
    wanted_platforms = list(fields.platforms)
    same_python = fields.python == minor and fields.implementation == implementation
    same_platform = (
        not wanted_platforms or "any" in wanted_platforms or bool(set(wanted_platforms) & set(here_platforms))
    )
    if same_python and same_platform:
        return
    wanted = f"{fields.implementation}{fields.python.replace('.', '')} on " + (
        ", ".join(wanted_platforms[:4]) or "any platform"
    )
    here = f"{implementation}{minor.replace('.', '')} on {', '.join(here_platforms[:4])}"
    raise bundle.BundleError(
        f"the bundle is for {wanted}; {python} is {here}",
        hint="pack the bundle for this host (pack --python X.Y --platform TAG), or pass --python",
    )


@dataclass(frozen=True)
class _Bundle:
    """A bundle checked whole, with the interpreter it will be installed on."""

    path: Path
    checked: bundle.CheckedBundle
    interpreter: Path
    inputs: str  # the manifest's sha256: the same bundle installed again changes nothing
    scratch: Path  # the wheels the first pass wrote; pylock.toml pointed at the store goes here
    unpacked: frozenset[str]  # the wheels (``wheels/<file>``) the first pass wrote there, checked
    declined: frozenset[str]  # and those it found intact in the store

    @property
    def fields(self) -> ManifestFields:
        return self.checked.fields


def _ready(python: str | None) -> tuple[Path, Interpreter | None] | None:
    """What the first pass need not wait for: uv located (its first use probes it), and the
    interpreter ``--python`` names, asked what it is. None without ``--python`` (the bundle says)."""
    find_uv()
    if python is None:
        return None
    interpreter = interpreter_for(python, "")
    return interpreter, interpreters.probe(str(interpreter))


def _open(
    layout: Layout, target: Target, bundle_path: Path, python: str | None, key: bytes | None
) -> _Bundle:
    """The bundle checked whole, the wheels the store lacks written into a new scratch directory on
    the way (``_Bundle.scratch``; the caller removes it), and its interpreter found and checked."""
    live = target.live.inputs_sha256 if target.live is not None else None
    scratch = Path(tempfile.mkdtemp(prefix="bundle-", dir=layout.tmp))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            ready = pool.submit(_ready, python)
            sink = unpack.Unpack(
                scratch,
                functools.partial(_store_lacks, layout),
                public_key=key,
                # An install of the live bundle changes nothing: no store entry is hashed for it.
                skip=lambda raw: hashlib.sha256(raw).hexdigest() == live,
            )
            try:
                with sink, progress.step(f"checking {bundle_path.name}"):
                    checked = bundle.read_bundle(bundle_path, public_key=key, sink=sink)
            except OSError as exc:  # writing into scratch (read_bundle's own reading errors are BundleError)
                raise bundle.BundleError(
                    f"{bundle_path}: cannot be extracted into {scratch}: {exc.strerror or exc}",
                    hint=f"check the free space and permissions of {layout.home}; --env was not touched",
                ) from exc
            probed = ready.result()  # after the bundle's own errors, which come first
        if probed is None:
            interpreter = interpreter_for(None, checked.fields.python)
            probed = interpreter, interpreters.probe(str(interpreter))
        check_target(checked.fields, *probed)
    except BaseException:
        fsutil.remove_tree(scratch)
        raise
    inputs = hashlib.sha256(checked.manifest_bytes).hexdigest()
    return _Bundle(
        bundle_path, checked, probed[0], inputs, scratch, frozenset(sink.unpacked), frozenset(sink.declined)
    )


def _store_lacks(layout: Layout, rel: str, size: int, sha256: str) -> bool:
    return not store.intact(store.entry(layout, sha256, rel.rpartition("/")[2]), size, sha256)


def install(
    bundle_path: Path,
    env: Path,
    *,
    python: str | None = None,
    public_key: Path | None = None,
    keep: int | None = None,
    wait: bool = True,
    in_place: bool = False,
    hooks_dir: Path | None = None,
    run_hooks: bool = True,
    diff: bool = False,
) -> DeployResult:
    """``run_hooks`` False (``--no-hooks``): the bundle's post-deploy hooks do not run, --hooks-dir or not.
    ``diff`` (``--diff``): the result carries the package changes as before/after lines too."""
    started = time.monotonic()
    if not bundle_path.is_file():
        raise ConfigError(f"{bundle_path}: no such bundle", hint="give the file `venvkeeper pack` wrote")
    key = signing.load_key_file(public_key, "public") if public_key is not None else None
    layout = Layout.for_env(env)
    if hooks_dir is not None:
        refuse_inside(layout.env, hooks_dir, "the --hooks-dir checkout")
    # As deploy: a failed first install leaves nothing behind. The bundle is read inside the claim:
    # the wheels the store lacks are written (beside the store) as they are checked.
    with claim(layout, wait=wait):
        target = target_for(layout, plan.Options(in_place=in_place), "install")
        opened = _open(layout, target, bundle_path, python, key)
        # uv's cache goes beside the generations when this user has no usable default (a service
        # user without a home); what the result reports is the cache of the install's own uv runs.
        try:
            with cache_scope(layout.home / "uv-cache"):
                if in_place:
                    result = _in_place(layout, target, opened, started)
                else:
                    keep = DEFAULT_KEEP if keep is None else keep
                    checkout = hooks_dir if run_hooks else None
                    result = _new_generation(layout, target, opened, keep, checkout, started, run_hooks)
                used = cache_used()
        finally:
            fsutil.remove_tree(opened.scratch)
        result.uv_cache = used.to_json() if used is not None else None
        result.show_diff = diff
        return result


def _new_generation(
    layout: Layout,
    target: Target,
    opened: _Bundle,
    keep: int,
    hooks_dir: Path | None,
    started: float,
    run_hooks: bool,
) -> DeployResult:
    if (same := already_installed(layout, target, opened.inputs, in_place=False)) is not None:
        return _unchanged(layout, target, same, started)
    fields = opened.fields
    # The bundle names the project's post-deploy hooks, but carries no project to run them in
    # (alembic.ini, manage.py): they run only in a checkout the operator names.
    hooks = list(fields.post_deploy) if hooks_dir is not None else []
    _stock(layout, opened)
    switched = transaction.build_and_switch(
        layout,
        target,
        keep,
        functools.partial(_populate, layout, opened, None, clone_from=_clone_source(target, opened)),
        lambda number, undo: (
            run_post_deploy(hooks, hooks_dir, fields.hook_timeout, layout, number, undo)
            if hooks and hooks_dir is not None
            else []
        ),
        adopt=target.kind == "venv",  # a plain venv at --env is kept as a generation, as deploy does
    )
    store.prune(layout, {sha for n in layout.numbers() for sha in _installed_from(layout.read_state(n))})
    reason = f"installed {opened.path.name}" + hooks_note(fields, hooks_dir, run_hooks)
    return transaction.switched_result("install", layout, switched, reason, started)


def _in_place(layout: Layout, target: Target, opened: _Bundle, started: float) -> DeployResult:
    """--in-place (a container image's layer): converge --env itself; no generations, no rollback."""
    live = target.live
    if (same := already_installed(layout, target, opened.inputs, in_place=True)) is not None:
        return _unchanged(layout, target, same, started)
    _stock(layout, opened)
    done = transaction.build_in_place(layout, target, functools.partial(_populate, layout, opened, live))
    store.prune(layout, _installed_from(done.state))
    return DeployResult(
        "install",
        env=str(layout.env),
        changed=True,
        packages=plan.diff_packages(done.previous_packages, done.state.packages),
        in_place=True,
        reason=f"converged in place from {opened.path.name}",
        duration_s=time.monotonic() - started,
    )


def already_installed(layout: Layout, target: Target, inputs: str, *, in_place: bool) -> str | None:
    """Why installing the bundle whose manifest hashes to ``inputs`` changes nothing (it is the live
    generation, or what --env holds in place), or None (``install --check`` asks the same)."""
    live = target.live
    if live is None or live.inputs_sha256 != inputs:
        return None
    if in_place:
        return "this bundle is already installed here" if (layout.env / "bin" / "python").exists() else None
    return "this bundle is already the live generation" if target.healthy else None


def _unchanged(layout: Layout, target: Target, reason: str, started: float) -> DeployResult:
    return DeployResult(
        "install",
        env=str(layout.env),
        changed=False,
        generation=target.live_number,
        previous=target.live_number,
        reason=reason,
        in_place=target.kind == "in-place",
        duration_s=time.monotonic() - started,
    )


def hooks_note(fields: ManifestFields, hooks_dir: Path | None, run_hooks: bool) -> str:
    named = fields.post_deploy
    if named and not run_hooks:
        return f"; {HOOKS_SKIPPED}"
    if not named or hooks_dir is not None:
        return ""
    return (
        f"; its {len(named)} post-deploy hook(s) did not run (--hooks-dir names the checkout to run them in)"
    )


def _installed_from(state: GenerationState | None) -> list[str]:
    """The store entries (sha256) a generation was installed from; none for one deploy built."""
    wheels = state.options.get("wheels") if state is not None and state.kind == "install" else None
    return [sha for sha in wheels if isinstance(sha, str)] if isinstance(wheels, list) else []


def _stock(layout: Layout, opened: _Bundle) -> None:
    """The wheel store made to hold every wheel of the bundle, and the pylock.toml uv installs (its
    paths the store's entries) written into the scratch directory.

    The first pass wrote the wheels the store lacked; a wheel it could not write (read before the
    manifest: a bundle repacked in another order) is extracted now if the store lacks it or holds
    it altered, by a second pass that hashes it again.
    """
    checked, scratch = opened.checked, opened.scratch
    wheels = store.wheels_of(checked.files)
    try:
        unseen = {rel: found for rel, found in wheels.items() if rel not in opened.unpacked | opened.declined}
        if rest := store.missing(layout, unseen):
            bundle.extract(opened.path, checked, scratch, only=rest)
        if written := opened.unpacked | rest:
            store.put(layout, scratch, written, wheels)
        try:
            pylock = store.pointed_pylock(checked.pylock, layout, wheels)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bundle.BundleError(
                f"{opened.path}: {bundle.TOP}/{bundle.PYLOCK}: {exc}",
                hint="a bundle installs only its own wheels: pack it again with venvkeeper pack",
            ) from None
        (scratch / bundle.PYLOCK).write_text(pylock, encoding="utf-8")
    except OSError as exc:
        raise bundle.BundleError(
            f"{opened.path}: cannot be extracted into {scratch}: {exc.strerror or exc}",
            hint=f"check the free space and permissions of {layout.home}; --env was not touched",
        ) from exc


def _clone_source(target: Target, opened: _Bundle) -> tuple[int, GenerationState] | None:
    """The live generation, when a new one can start as its hard-link clone (as deploy's decision
    allows it: healthy, built here, on this very interpreter); None otherwise."""
    live, identity = target.live, interpreter_identity(opened.interpreter) or {}
    if target.kind != "generation" or not target.healthy or target.moved_from or live is None:
        return None
    if target.live_number is None or not identity:
        return None
    if any(live.interpreter.get(k) != identity.get(k) for k in ("realpath", "mtime_ns", "size")):
        return None
    return target.live_number, live


def _start_clone(
    layout: Layout, source: tuple[int, GenerationState] | None, env_dir: Path
) -> tuple[Clone | None, GenerationState | None, dict[str, Any]]:
    """The clone of the live generation into ``env_dir`` (what it holds, and its record), or None and
    why: then the environment is built from nothing, as before."""
    if source is None:
        return None, None, {"from": "nothing", "why": "no live generation on this interpreter to clone"}
    try:
        cloned = delta.start(layout, source[0], env_dir)
    except CloneRefusedError as exc:
        return (
            None,
            None,
            {"from": "nothing", "why": f"the clone of generation {source[0]} was refused: {exc}"},
        )
    if cloned.reinstall:  # a file changed since its seal: the bundle's own wheels, afresh
        engine.clean_cache(sorted(cloned.poisoned))
        delta.empty(env_dir)
        changed = sorted(cloned.refused)[0]
        why = f"the clone of generation {source[0]} was refused: {changed} changed since its seal"
        return None, None, {"from": "nothing", "why": why}
    return cloned, source[1], {"from": "clone", "source": source[0]}


def _populate(
    layout: Layout,
    opened: _Bundle,
    previous: GenerationState | None,
    env_dir: Path,
    number: int,
    manifest_path: Path,
    *,
    clone_from: tuple[int, GenerationState] | None = None,
) -> GenerationState:
    """A venv on the bundle's interpreter, its pylock.toml installed offline, then finished as deploy's.
    ``previous``: the record of what ``env_dir`` holds already (--in-place), else None; ``clone_from``:
    the live generation a new one starts as a hard-link clone of (``uv pip sync`` is exact: it removes
    what the bundle dropped and installs what it changed)."""
    fields, interpreter, scratch = opened.fields, opened.interpreter, opened.scratch
    python = env_dir / "bin" / "python"
    cloned, held, built = _start_clone(layout, clone_from, env_dir) if previous is None else (None, None, {})
    previous = previous or held
    try:  # before anything is written into env_dir
        stale = store.kept_by_uv(
            opened.checked.pylock, layout, read_packages(env_dir), _installed_from(previous)
        )
    except ValueError as exc:
        raise bundle.BundleError(
            f"{opened.path}: {exc}: --in-place cannot replace it",
            hint="install it without --in-place: a new generation installs every package afresh",
        ) from None
    if cloned is None:
        engine.create_venv(env_dir, str(interpreter), allow_existing=env_dir.is_dir())
    with build.installing(env_dir, "installing the bundle's packages"):
        engine.install_pylock(scratch, python, scratch / "pylock.toml")
        if stale:  # kept by the sync although their wheel changed (astral-sh/uv#4412): replaced by name
            engine.install_requirements(
                python, [str(path) for path in stale.values()], reinstall=sorted(stale)
            )
    found = opened.checked.files
    provided = [
        wheels.inspect_wheel(store.entry(layout, found[f"wheels/{name}"][1], name)) for name in fields.members
    ]
    if cloned is not None:
        delta.drop_stale_bytecode(env_dir, cloned)
    done = build.finish(
        env_dir,
        manifest_path,
        provided,
        {},
        reuse=cloned.reused if cloned is not None else None,
    )
    state = _state(opened, number, done)
    if opened.checked.sbom is not None:  # checked with the bundle: it names exactly the wheels installed
        state.sbom_sha256 = sbomgen.write(sbomgen.sbom_path(manifest_path), opened.checked.sbom)
    if cloned is not None:  # uv pip sync brought what changed; which ones, it does not say
        built = cloned.built(int(built["source"]), sorted(stale), lock_synced=True)
    state.built = built or None
    return state


def _state(opened: _Bundle, number: int, done: build.Finished) -> GenerationState:
    """The record of a generation installed from ``opened``."""
    fields, interpreter = opened.fields, opened.interpreter
    return GenerationState(
        number=number,
        kind="install",
        created=now_iso(),
        packages=done.packages,
        project=None,
        lock_sha256=fields.lock_sha256,
        inputs_sha256=opened.inputs,
        interpreter=build.interpreter_record(
            interpreter_identity(interpreter) or {"path": str(interpreter)}, done.report
        ),
        options={
            "bundle": str(opened.path.resolve()),  # named by the SBOM's fix, from any directory
            "groups": list(fields.groups),
            # the wheel store's entries (sha256) it came from: kept while this generation is
            "wheels": sorted({sha for _, sha in store.wheels_of(opened.checked.files).values()}),
        },
        uv_version=uv_version(),
        manifest_sha256=done.manifest_sha256,
        venvkeeper_version=__version__,
        git_commit=_built_from(opened).get("git_commit"),
    )


def _built_from(opened: _Bundle) -> dict[str, Any]:
    """The manifest's ``built_from`` (checked by bundle.check: a commit is hex or absent)."""
    found = opened.checked.manifest.get("built_from")
    return found if isinstance(found, dict) else {}
