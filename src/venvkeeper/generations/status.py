"""``venvkeeper status`` and ``venvkeeper rollback``: the generations kept beside an environment."""

from __future__ import annotations

from pathlib import Path

from venvkeeper.core import locking, paths
from venvkeeper.core.errors import ConfigError, EnvironmentPathError
from venvkeeper.generations.layout import Layout
from venvkeeper.generations.results import GenerationInfo, RollbackResult, StatusResult
from venvkeeper.project import plan

__all__ = ["rollback", "status"]


def status(env: Path) -> StatusResult:
    layout = Layout.for_env(env)
    kind = layout.env_kind()
    current = layout.current_number()
    infos: list[GenerationInfo] = []
    uv_cache: dict[str, str] | None = None
    for number in layout.numbers():
        state = layout.read_state(number)
        if state is None:
            continue
        if number == current and state.uv_cache_dir:
            uv_cache = {"dir": state.uv_cache_dir, "why": state.uv_cache_why or ""}
        infos.append(
            GenerationInfo(
                number=number,
                current=number == current,
                kind=state.kind,
                created=state.created,
                python=str(state.interpreter.get("version", "")),
                packages=len(state.packages),
                members={m["name"]: (m.get("sha256") or "")[:12] for m in state.members if m.get("package")},
                lock_sha256=state.lock_sha256 or "",
            )
        )
    if kind == "missing" and not infos:
        raise EnvironmentPathError(
            f"{layout.env}: does not exist", hint="deploy it first with `venvkeeper deploy`"
        )
    return StatusResult(
        "status", env=str(layout.env), kind=kind, current=current, generations=infos, uv_cache=uv_cache
    )


def rollback(env: Path, *, to: int | None = None, wait: bool = True) -> RollbackResult:
    """Switch --env back to the newest kept generation older than the live one (or to ``to``)."""
    layout = Layout.for_env(env)
    if not layout.home.is_dir():
        raise EnvironmentPathError(f"{layout.env}: no venvkeeper generations here", hint="deploy it first")
    with locking.hold(layout.lock_file, wait=wait, what=f"environment {layout.env}"):
        current = layout.current_number()
        numbers = layout.numbers()
        if to is None:
            older = [n for n in numbers if current is not None and n < current]
            if not older:
                raise ConfigError(
                    f"{layout.env}: no generation older than {current} is kept",
                    hint="`venvkeeper status --env ...` lists the kept generations",
                )
            to = older[-1]
        elif to not in numbers:
            raise ConfigError(
                f"{layout.env}: generation {to} is not kept (kept: {', '.join(map(str, numbers)) or 'none'})",
                hint="`venvkeeper status --env ...` lists the kept generations",
            )
        if to == current:
            raise ConfigError(f"{layout.env}: generation {to} is already live", hint="nothing to do")
        target = layout.read_state(to)
        live = layout.read_state(current) if current is not None else None
        if target is None:
            raise EnvironmentPathError(f"{layout.state_file(to)}: unreadable", hint="choose another --to")
        if target.kind != "adopted" and not (layout.gen_dir(to) / "bin" / "python").exists():
            raise EnvironmentPathError(
                f"{layout.gen_dir(to)}: its interpreter is gone, so generation {to} cannot run",
                hint="deploy again instead of rolling back (or `venvkeeper heal`)",
            )
        moved = paths.moved_from(target.to_json(), str(layout.gen_dir(to)), to)
        if target.kind != "adopted" and moved is not None:
            raise EnvironmentPathError(
                f"{layout.gen_dir(to)}: built at {moved} and moved since, so generation {to}'s scripts "
                "name a path that is gone",
                hint="deploy again instead of rolling back (a sealed generation is not edited)",
            )
        if target.kind == "adopted":
            layout.restore_adopted(to)
        else:
            layout.switch_to(to)
        diff = plan.diff_packages(live.packages if live else {}, target.packages)
        return RollbackResult(
            "rollback",
            env=str(layout.env),
            generation=to,
            previous=current,
            packages=diff,
            restored_adopted=target.kind == "adopted",
        )
