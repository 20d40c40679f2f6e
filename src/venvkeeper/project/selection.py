"""What an environment gets from the lock: the one selection rule every command shares.

The rule: the runtime dependencies of every workspace member (uv's ``--all-packages``), plus
exactly the dependency groups named by ``--group`` (or, without it, ``[tool.venvkeeper] groups``).
Nothing else. uv's ``[tool.uv] default-groups`` (``dev`` when unset, a list, or ``"all"``) say what
a developer's ``uv sync`` and ``uv run`` get; they are a development convenience, never deployed
unless named.

deploy, update's candidate, export and ``verify --project`` hand uv :func:`uv_args`; pack walks the
lock itself (:func:`venvkeeper.bundle.locked.runtime_packages`, which reads no default-groups) with the same
groups; install installs what pack bundled. Pure: nothing here runs uv.
"""

from __future__ import annotations

TYPE_CHECKING = False  # nothing imported at run time: the engine, on every path that runs uv, imports this
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["chosen", "uv_args"]


def chosen(cli: Sequence[str] | None, configured: Sequence[str]) -> tuple[str, ...]:
    """The groups to install: ``--group`` when given (even one), else ``[tool.venvkeeper] groups``.

    Sorted and without repeats, so the same selection is recorded (and compared) the same way.
    """
    return tuple(sorted(set(cli if cli is not None else configured)))


def uv_args(groups: Iterable[str]) -> list[str]:
    """uv's flags for the selection, for ``uv sync`` and ``uv export`` alike.

    ``--no-default-groups`` rather than ``--no-dev``: ``--no-dev`` leaves every other default
    group in (a project with ``default-groups = ["dev", "docs", "tests"]`` deployed its docs and
    test tools), and it beats ``--group dev``, so dev could never be asked for. With
    ``--no-default-groups`` each ``--group`` adds exactly that group, ``default-groups = "all"``
    included (checked with uv 0.13.8). ``--only-group`` is not used: it drops the runtime
    dependencies.
    """
    return ["--no-default-groups", *[arg for group in sorted(set(groups)) for arg in ("--group", group)]]
