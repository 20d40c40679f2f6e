"""What a long command is doing, for whoever watches: the observer its steps report to.

The core decides and the command line prints (docs/architecture.md). deploy, install, heal, pack and
update mark their step boundaries with :func:`step` (staging, building a member, installing the
packages, the smoke check, sealing, each hook); what that shows is the :class:`Reporter` the command
line installs with :func:`reporting` around the command: a rich display on a terminal
(``cli/progress.py``). With none installed (off a terminal, ``--json``, ``--quiet``, a library caller)
a step is a context manager that does nothing else, and the command's output is what it always was.

One reporter for the process, not a ``contextvars.ContextVar``: the steps run in worker threads too
(uv's checks, a member's build beside the sync, the smoke check beside the seal), and
``concurrent.futures`` does not carry a context into them.
"""

from __future__ import annotations

import contextlib
import itertools
import time

TYPE_CHECKING = False  # typing is not imported at run time: the no-op deploy is timed
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import ParamSpec, Protocol, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")

    class Reporter(Protocol):
        """Told of each step: it starts (``total``: units it will ``advance`` by, None: unknown),
        advances, and ends (``summary``: what it did, in the words the display keeps)."""

        def started(self, key: int, label: str, total: int | None) -> None: ...

        def advanced(self, key: int, amount: int) -> None: ...

        def finished(self, key: int, summary: str, *, ok: bool, seconds: float) -> None: ...


__all__ = ["Step", "active", "call", "reporting", "step", "traced"]


class _Current:
    reporter: Reporter | None = None


_keys = itertools.count(1)  # next() on a count is atomic under the GIL: steps start in several threads


class Step:
    """A step under way. ``summary`` (set before it ends) replaces its label in the line it leaves,
    e.g. "installing 23 packages" for "installing the locked packages"; :meth:`failed` marks a step
    that ended without raising but failed (a hook that exited 1)."""

    __slots__ = ("key", "label", "ok", "reporter", "summary")

    def __init__(self, label: str, reporter: Reporter | None) -> None:
        self.key = next(_keys)
        self.label = label
        self.reporter = reporter
        self.summary: str | None = None
        self.ok = True

    def advance(self, amount: int = 1) -> None:
        if self.reporter is not None:
            self.reporter.advanced(self.key, amount)

    def failed(self, summary: str) -> None:
        self.summary, self.ok = summary, False


def active() -> bool:
    """Whether anyone watches: work done only for the display (counting what a step installed) is
    skipped otherwise."""
    return _Current.reporter is not None


@contextlib.contextmanager
def step(label: str, *, total: int | None = None) -> Iterator[Step]:
    """One step of the command, from entering to leaving the block (an exception marks it failed)."""
    reporter = _Current.reporter
    current = Step(label, reporter)
    if reporter is None:
        yield current
        return
    started = time.monotonic()
    reporter.started(current.key, label, total)
    try:
        yield current
    except BaseException:
        reporter.finished(current.key, label, ok=False, seconds=time.monotonic() - started)
        raise
    summary = current.summary or label
    reporter.finished(current.key, summary, ok=current.ok, seconds=time.monotonic() - started)


def call(label: str, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``function(*args, **kwargs)`` as the step ``label``."""
    with step(label):
        return function(*args, **kwargs)


def traced(label: str, function: Callable[P, R]) -> Callable[P, R]:
    """``function`` made the step ``label`` whenever it is called (handed to a thread pool)."""

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with step(label):
            return function(*args, **kwargs)

    return run


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Every step started inside the block reports to ``reporter`` (the command line's display)."""
    previous, _Current.reporter = _Current.reporter, reporter
    try:
        yield
    finally:
        _Current.reporter = previous
