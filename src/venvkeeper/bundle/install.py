"""``venvkeeper install BUNDLE --env PATH``: a bundle into a new generation, with no network at all.

The bundle is checked whole before anything is written (:func:`bundle.read_bundle`): every entry's
kind and name, every hash against the manifest, the signature when a key is given, every manifest
field install acts on, every file its ``pylock.toml`` names (each must be one of the bundle's
wheels), and the target tags against this interpreter. Only then is it extracted (a second pass
that hashes again) into the environment's scratch directory. uv installs the bundle's
``pylock.toml``, whose entries are the bundled wheels by relative path, offline. The generation
is smoke-checked, sealed and switched to exactly as ``deploy`` does it
(:func:`deploy.build_and_switch`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from venvkeeper import __version__
from venvkeeper.bundle import archive as bundle
from venvkeeper.bundle.check import ManifestFields
from venvkeeper.core import files as fsutil
from venvkeeper.core.config import DEFAULT_KEEP
from venvkeeper.core.errors import ConfigError, InterpreterError
from venvkeeper.gateways.uv import cache_scope, cache_used
from venvkeeper.generations import engine
from venvkeeper.generations.layout import GenerationState, Layout, now_iso, refuse_inside
from venvkeeper.generations.results import DeployResult
from venvkeeper.project import interpreters

__all__ = ["install"]


def _interpreter(request: str | None, target_python: str) -> Path:
    """``--python`` (a path or a version), else an interpreter of the bundle's minor version."""
    if request and "/" in request:
        path = Path(os.path.abspath(request))
        if not os.access(path, os.X_OK):
            raise InterpreterError(
                f"{path}: not an executable interpreter", hint="pass --python /path/to/python"
            )
        return path
    return engine.find_python(Path("/"), request or target_python)


def _check_target(fields: ManifestFields, python: Path) -> None:
    """Refuse a bundle made for another Python minor or platform, naming both sets of tags."""
    from packaging import tags  # noqa: PLC0415

    seen = interpreters.probe(str(python))
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
) -> DeployResult:
    started = time.monotonic()
    from venvkeeper.bundle import signing  # noqa: PLC0415
    from venvkeeper.generations.transaction import build_and_switch, claim, live_target, run_post_deploy  # noqa: PLC0415

    if not bundle_path.is_file():
        raise ConfigError(f"{bundle_path}: no such bundle", hint="give the file `venvkeeper pack` wrote")
    key = signing.load_key_file(public_key, "public") if public_key is not None else None
    checked = bundle.read_bundle(bundle_path, public_key=key)
    fields = checked.fields
    interpreter = _interpreter(python, fields.python)
    _check_target(fields, interpreter)
    inputs = hashlib.sha256(checked.manifest_bytes).hexdigest()

    layout = Layout.for_env(env)
    if hooks_dir is not None:
        refuse_inside(layout.env, hooks_dir, "the --hooks-dir checkout")

    def run() -> DeployResult:
        if in_place:
            return _in_place(layout, bundle_path, checked, interpreter, inputs, started)
        target = live_target(layout)
        if target.live is not None and target.healthy and target.live.inputs_sha256 == inputs:
            return DeployResult(
                "install",
                env=str(layout.env),
                changed=False,
                generation=target.live_number,
                previous=target.live_number,
                reason="this bundle is already the live generation",
                duration_s=time.monotonic() - started,
            )
        scratch = _extract(layout, bundle_path, checked)
        try:

            def populate(env_dir: Path, number: int, manifest_path: Path) -> GenerationState:
                return _populate(
                    env_dir, number, manifest_path, scratch, fields, interpreter, inputs, bundle_path
                )

            # The bundle names the project's post-deploy hooks, but carries no project to run them in
            # (alembic.ini, manage.py): they run only in a checkout the operator names.
            hooks = list(fields.post_deploy) if hooks_dir is not None else []
            timeout = fields.hook_timeout
            switched = build_and_switch(
                layout,
                target,
                DEFAULT_KEEP if keep is None else keep,
                populate,
                lambda number, undo: (
                    run_post_deploy(hooks, hooks_dir, timeout, layout, number, undo)
                    if hooks and hooks_dir is not None
                    else []
                ),
            )
        finally:
            fsutil.remove_tree(scratch)
        from venvkeeper.project import plan  # noqa: PLC0415

        return DeployResult(
            "install",
            env=str(layout.env),
            changed=True,
            generation=switched.number,
            previous=switched.previous,
            packages=plan.diff_packages(switched.previous_packages, switched.state.packages),
            hooks=switched.hooks,
            adopted=switched.adopted,
            pruned=switched.pruned,
            reason=f"installed {bundle_path.name}" + _hooks_note(fields, hooks_dir),
            duration_s=time.monotonic() - started,
        )

    # As deploy: a failed first install leaves nothing behind, and uv's cache goes beside the
    # generations when this user has no usable default (a service user without a home).
    with claim(layout, wait=wait), cache_scope(layout.home / "uv-cache"):
        result = run()
        used = cache_used()
        result.uv_cache = used.to_json() if used is not None else None
        return result


def _hooks_note(fields: ManifestFields, hooks_dir: Path | None) -> str:
    named = fields.post_deploy
    if not named or hooks_dir is not None:
        return ""
    return (
        f"; its {len(named)} post-deploy hook(s) did not run (--hooks-dir names the checkout to run them in)"
    )


def _extract(layout: Layout, bundle_path: Path, checked: bundle.CheckedBundle) -> Path:
    """The second pass, into the environment's scratch directory (removed again on any failure)."""
    scratch = Path(tempfile.mkdtemp(prefix="bundle-", dir=layout.tmp))
    try:
        bundle.extract(bundle_path, checked, scratch)
    except OSError as exc:
        fsutil.remove_tree(scratch)
        raise bundle.BundleError(
            f"{bundle_path}: cannot be extracted into {scratch}: {exc.strerror or exc}",
            hint=f"check the free space and permissions of {layout.tmp}; --env was not touched",
        ) from exc
    except BaseException:
        fsutil.remove_tree(scratch)
        raise
    return scratch


def _in_place(
    layout: Layout,
    bundle_path: Path,
    checked: bundle.CheckedBundle,
    interpreter: Path,
    inputs: str,
    started: float,
) -> DeployResult:
    """--in-place (a container image's layer): converge --env itself; no generations, no rollback."""
    from venvkeeper.generations.layout import read_packages, read_state_file  # noqa: PLC0415
    from venvkeeper.project import plan  # noqa: PLC0415

    kind = layout.env_kind()
    if kind == "generation":
        raise ConfigError(
            f"{layout.env} is a symlink to a venvkeeper generation; "
            "--in-place would change a kept generation",
            hint="install without --in-place (generations switch atomically anyway)",
        )
    live = read_state_file(layout.inplace_state) if kind == "venv" else None
    if live is not None and live.inputs_sha256 == inputs and (layout.env / "bin" / "python").exists():
        return DeployResult(
            "install",
            env=str(layout.env),
            changed=False,
            reason="this bundle is already installed here",
            in_place=True,
            duration_s=time.monotonic() - started,
        )
    before = read_packages(layout.env) if kind == "venv" else {}
    scratch = _extract(layout, bundle_path, checked)
    try:
        # The record goes first: a run killed half-way must not leave a record saying "unchanged".
        layout.inplace_state.unlink(missing_ok=True)
        if kind == "empty":
            layout.env.rmdir()
        state = _populate(
            layout.env, 0, layout.inplace_manifest, scratch, checked.fields, interpreter, inputs, bundle_path
        )
        state.directory = str(layout.env)  # where it was built: a later move is noticed (paths.moved_from)
        fsutil.atomic_write_json(layout.inplace_state, state.to_json())
    finally:
        fsutil.remove_tree(scratch)
    return DeployResult(
        "install",
        env=str(layout.env),
        changed=True,
        packages=plan.diff_packages(before, state.packages),
        in_place=True,
        reason=f"converged in place from {bundle_path.name}",
        duration_s=time.monotonic() - started,
    )


def _populate(
    env_dir: Path,
    number: int,
    manifest_path: Path,
    scratch: Path,
    fields: ManifestFields,
    interpreter: Path,
    inputs: str,
    bundle_path: Path,
) -> GenerationState:
    from venvkeeper.gateways.uv import uv_version  # noqa: PLC0415
    from venvkeeper.generations.manifest import seal  # noqa: PLC0415
    from venvkeeper.generations.smoke import smoke_check  # noqa: PLC0415
    from venvkeeper.generations.transaction import interpreter_identity  # noqa: PLC0415
    from venvkeeper.generations.wheels import inspect_wheel  # noqa: PLC0415

    engine.create_venv(env_dir, str(interpreter), allow_existing=env_dir.is_dir())
    engine.install_pylock(scratch, env_dir / "bin" / "python", scratch / "pylock.toml")
    infos = [inspect_wheel(scratch / "wheels" / name) for name in fields.members]
    report = smoke_check(
        env_dir,
        sorted({m for i in infos for m in i.top_level}),
        sorted({s for i in infos for s in i.scripts}),
    )
    sealed = seal(env_dir, {})
    manifest_sha = fsutil.atomic_write_json(manifest_path, sealed.to_json(), compact=True)
    return GenerationState(
        number=number,
        kind="install",
        created=now_iso(),
        packages={name: d["version"] for name, d in sealed.distributions.items()},
        project=None,
        lock_sha256=fields.lock_sha256,
        inputs_sha256=inputs,
        interpreter={
            **(interpreter_identity(interpreter) or {"path": str(interpreter)}),
            "version": report["version"],
            "implementation": report["implementation"],
            "markers": report["markers"],
        },
        options={"bundle": str(bundle_path), "groups": list(fields.groups)},
        uv_version=uv_version(),
        manifest_sha256=manifest_sha,
        venvkeeper_version=__version__,
    )
