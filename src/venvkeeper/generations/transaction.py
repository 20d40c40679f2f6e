"""The one generation transaction: claim --env, build a generation beside the live one, switch, run the
hooks (switching back if one fails), prune; or, --in-place, converge --env itself.

deploy, install, heal's redeploy and update's ship all go through :func:`claim` and
:func:`build_and_switch` (or :func:`build_in_place`); what differs between them is only how an
environment is populated (each then finishes it with :func:`venvkeeper.generations.build.finish`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from venvkeeper.core import files as fsutil
from venvkeeper.core import locking, paths
from venvkeeper.core.errors import BusyError, ConfigError, HookError
from venvkeeper.core.lazy import lazy
from venvkeeper.generations import identity
from venvkeeper.generations.layout import GenerationState, Layout, now_iso, read_packages, read_state_file
from venvkeeper.generations.results import DeployResult
from venvkeeper.project import plan

# The hooks (and the shell gateway under them) are loaded when a hook runs: not on the no-op path.
if TYPE_CHECKING:
    from venvkeeper.generations import hooks as hookrun
    from venvkeeper.generations.hooks import HookRun
else:
    hookrun = lazy("venvkeeper.generations.hooks")


def interpreter_identity(path: Path) -> dict[str, Any] | None:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return {"path": str(path), "realpath": real, "mtime_ns": st.st_mtime_ns, "size": st.st_size}


def interpreter_intact(state: GenerationState) -> bool:
    """The interpreter the environment was built on is still there, the same file (by stat)."""
    current = interpreter_identity(Path(state.interpreter.get("realpath", "/nonexistent")))
    return plan.interpreter_unchanged(state.interpreter, current)


def _healthy(env_dir: Path, state: GenerationState | None, moved: str | None) -> bool:
    # exists() follows the link: a dangling bin/python (interpreter moved or removed) is not healthy.
    # Nor is one that was moved since it was built: its scripts start the old path's interpreter.
    return (
        state is not None
        and (env_dir / "bin" / "python").exists()
        and interpreter_intact(state)
        and moved is None
    )


def _moved(env_dir: Path, state: GenerationState | None, number: int | None) -> str | None:
    """Where the environment was built, when it no longer lives there (see paths.moved_from)."""
    return paths.moved_from(state.to_json() if state is not None else None, str(env_dir), number)


_CLAIM_ATTEMPTS = 3


@contextlib.contextmanager
def claim(layout: Layout, *, wait: bool) -> Iterator[None]:
    """Make --env's state directory and hold its lock for the body (deploy's and install's).

    A failed first run leaves nothing behind: what :meth:`Layout.prepare` created is taken away
    again, lock file included. A run that waited on that lock then holds a file no longer in the
    directory, so it prepares and locks afresh rather than work unexcluded in a removed directory.
    """
    for _ in range(_CLAIM_ATTEMPTS):
        created = layout.prepare()
        with locking.hold(layout.lock_file, wait=wait, what=f"environment {layout.env}"):
            if not layout.lock_file.exists():
                continue  # the run we waited for failed first and removed the state directory
            env_was = layout.env_kind()
            layout.sweep()
            try:
                yield
            except BaseException:
                layout.remove_unused(created, env_was)
                raise
            return
    raise BusyError(
        f"{layout.env}: its state directory was removed {_CLAIM_ATTEMPTS} times while this run waited",
        hint="other runs keep failing their first deploy here; let them finish, then run again",
    )


@dataclass
class Target:
    """Where this deploy looks for the live state and builds the new one."""

    kind: str  # Layout.env_kind(), or "in-place"
    live_number: int | None
    live: GenerationState | None
    healthy: bool
    env_kind: str = ""
    moved_from: str | None = None  # the live environment was built there and moved since


def refuse_in_place_on_generation(env: str | Path, env_kind: str, command: str) -> None:
    """--in-place never changes a kept generation: refuse it when --env is our symlink."""
    if env_kind == "generation":
        raise ConfigError(
            f"{env} is a symlink to a venvkeeper generation; --in-place would change a kept generation",
            hint=f"{command} without --in-place (generations switch atomically anyway)",
        )


def target_for(layout: Layout, options: plan.Options, command: str = "deploy") -> Target:
    kind = layout.env_kind()
    if options.in_place:
        refuse_in_place_on_generation(layout.env, kind, command)
        live = read_state_file(layout.inplace_state) if kind == "venv" else None
        moved = _moved(layout.env, live, None)
        return Target("in-place", None, live, _healthy(layout.env, live, moved), kind, moved)
    number = layout.current_number() if kind == "generation" else None
    live = layout.read_state(number) if number is not None else None
    moved = _moved(layout.gen_dir(number), live, number) if number is not None else None
    healthy = number is not None and _healthy(layout.gen_dir(number), live, moved)
    return Target(kind, number, live, healthy, kind, moved)


@dataclass(frozen=True)
class Undo:
    """How to put --env back when a post-deploy hook fails."""

    previous: int | None = None
    adopted: int | None = None
    remove_link: bool = False
    failed: int | None = None


@dataclass(frozen=True)
class Switched:
    """What switching --env to a new generation did."""

    number: int
    state: GenerationState
    adopted: int | None
    previous: int | None
    previous_packages: dict[str, str]
    hooks: list[HookRun]
    pruned: list[int]


def switched_result(
    command: str, layout: Layout, switched: Switched, reason: str, started: float, **more: Any
) -> DeployResult:
    """The result of a switch to a new generation, as deploy, install and update report it (``more``:
    what only that command says, such as the members it rebuilt)."""
    return DeployResult(
        command,
        env=str(layout.env),
        changed=True,
        generation=switched.number,
        previous=switched.previous,
        packages=plan.diff_packages(switched.previous_packages, switched.state.packages),
        hooks=switched.hooks,
        adopted=switched.adopted,
        pruned=switched.pruned,
        reason=reason,
        duration_s=time.monotonic() - started,
        **more,
    )


def build_and_switch(
    layout: Layout,
    target: Target,
    keep: int,
    populate: Callable[[Path, int, Path], GenerationState],
    hooks: Callable[[int, Undo], list[HookRun]],
    *,
    adopt: bool,
) -> Switched:
    """The generation transaction deploy and install share: build a new generation beside the live
    one (``populate(directory, number, manifest_path)`` returns its record), write its record, switch
    --env to it atomically (``adopt``: the plain venv standing there is kept as a generation first),
    run the hooks (which switch back on failure through the undo), then prune old generations.
    """
    adopted: int | None = None
    number = layout.next_number()
    if adopt:  # the caller's decision: a plain venv stands at --env (target.kind == "venv")
        adopted, number = number, number + 1
    try:
        state = populate(layout.gen_dir(number), number, layout.manifest_file(number))
        state.directory = str(layout.gen_dir(number))
        fsutil.atomic_write_json(layout.state_file(number), state.to_json())
    except BaseException:
        identity.remove(layout, [number], target.live_number)
        raise

    previous_packages = target.live.packages if target.live is not None else {}
    if adopted is not None:
        previous_packages = read_packages(layout.env)
        _record_adopted(layout, adopted, previous_packages)
        layout.adopt(adopted)
    else:
        if target.kind == "empty":
            layout.env.rmdir()
        layout.switch_to(number)

    undo = Undo(target.live_number, adopted, remove_link=target.kind in ("missing", "empty"), failed=number)
    hook_runs = hooks(number, undo)
    pruned = identity.prune(layout, keep)
    return Switched(
        number,
        state,
        adopted,
        adopted if adopted is not None else target.live_number,
        previous_packages,
        hook_runs,
        pruned,
    )


def switch_prepared(
    layout: Layout,
    target: Target,
    keep: int,
    number: int,
    state: GenerationState,
    hooks: Callable[[int, Undo], list[HookRun]],
) -> Switched:
    """The second half of :func:`build_and_switch`, for a generation populated beforehand (update builds
    it while its tests run, and tests it there): write its record, switch --env from the live generation
    to it, run the hooks (switching back on failure), prune. The caller holds --env's lock and has
    checked that ``target``'s live generation is the one ``number`` was built beside."""
    try:
        state.directory = str(layout.gen_dir(number))
        fsutil.atomic_write_json(layout.state_file(number), state.to_json())
    except BaseException:
        identity.remove(layout, [number], target.live_number)
        raise
    layout.switch_to(number)
    hook_runs = hooks(number, Undo(target.live_number, None, remove_link=False, failed=number))
    pruned = identity.prune(layout, keep)
    previous_packages = target.live.packages if target.live is not None else {}
    return Switched(number, state, None, target.live_number, previous_packages, hook_runs, pruned)


@dataclass(frozen=True)
class InPlace:
    """What converging --env in place did."""

    state: GenerationState
    previous_packages: dict[str, str]


def build_in_place(
    layout: Layout, target: Target, populate: Callable[[Path, int, Path], GenerationState]
) -> InPlace:
    """--in-place (a container image's layer): populate --env itself and record it; no generations,
    no rollback. ``populate(directory, 0, manifest_path)`` returns the record."""
    before = packages_before(layout, target, in_place=True, adopt=False)
    # The record goes first: a run killed half-way must not leave a record saying "unchanged".
    layout.inplace_state.unlink(missing_ok=True)
    if target.env_kind == "empty":
        layout.env.rmdir()
    state = populate(layout.env, 0, layout.inplace_manifest)
    state.directory = str(layout.env)  # where it was built: a later move is noticed (paths.moved_from)
    fsutil.atomic_write_json(layout.inplace_state, state.to_json())
    return InPlace(state, before)


def packages_before(layout: Layout, target: Target, *, in_place: bool, adopt: bool) -> dict[str, str]:
    """What a deploy's or install's package diff starts from (``--check`` predicts against it too):
    the venv standing at --env when it is converged in place or adopted, else the live record's."""
    if in_place or adopt:
        return read_packages(layout.env) if target.env_kind == "venv" else {}
    return dict(target.live.packages) if target.live is not None else {}


def _record_adopted(layout: Layout, number: int, packages: dict[str, str]) -> None:
    # Written before the exchange, so the adopted venv is never a directory without a record
    # (which the next run's sweep would delete).
    state = GenerationState(
        number=number,
        kind="adopted",
        created=now_iso(),
        packages=packages,
        project=None,
        options={"origin": str(layout.env)},
    )
    fsutil.atomic_write_json(layout.state_file(number), state.to_json())


def run_post_deploy(
    commands: Sequence[str],
    cwd: Path,
    timeout: float,
    layout: Layout,
    number: int | None,
    undo: Undo,
    *,
    rollback: bool = True,
) -> list[HookRun]:
    """Run the post-deploy hooks; when one fails, switch back (``undo``) and raise HookError."""
    runs = hookrun.run_hooks(commands, cwd=cwd, env_path=layout.env, generation=number, timeout=timeout)
    failed = runs[-1] if runs and not runs[-1].ok else None
    if failed is None:
        return runs
    what = "timed out" if failed.exit_code is None else f"exited {failed.exit_code}"
    if number is None or not rollback:
        stays = (
            "the environment was converged in place" if number is None else f"generation {number} stays live"
        )
        raise HookError(
            f"post-deploy hook `{failed.command}` {what}; {stays} (no rollback)",
            hint="fix the hook's cause (its output is below), then deploy again or `venvkeeper rollback`",
            detail=failed.output_tail,
            extra={"hooks": [r.to_json() for r in runs]},
        )
    if undo.adopted is not None:
        layout.restore_adopted(undo.adopted)
        back = f"the adopted environment is back at {layout.env}"
    elif undo.previous is not None:
        layout.switch_to(undo.previous)
        back = f"switched back to generation {undo.previous}"
    else:
        os.unlink(layout.env)
        back = f"{layout.env} removed again (nothing stood there before)"
    identity.remove(layout, [number], undo.previous)
    raise HookError(
        f"post-deploy hook `{failed.command}` {what}; {back}",
        hint="fix the hook's cause (its output is below) and deploy again",
        detail=failed.output_tail,
        extra={"hooks": [r.to_json() for r in runs]},
    )
