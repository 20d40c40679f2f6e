"""The steps of deploy, install, heal, pack and update, shown on a terminal while they run.

The engine reports its steps to :mod:`venvkeeper.core.progress`; this module is the one place that
shows them. :func:`watched` wraps a command's action: only when stderr is a terminal and neither
``--json`` nor ``--quiet`` was given does it install a :class:`Terminal` for the command's duration;
otherwise the action is returned as it is, and stdout and stderr are exactly what they were without
this module. On stderr, a finished step leaves one line ("✓ installing 23 packages  1.2s") and the
steps under way are a live display below them, which is stopped (and erased) before the command's
error line or result is printed.

rich is loaded at the first step, not before: a deploy that finds nothing to do reports no step, so
even on a terminal it never imports rich (the no-op fast path, ``cli/fastpath.py``, never loads this
module at all).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading

from venvkeeper.core import progress
from venvkeeper.core.lazy import lazy

TYPE_CHECKING = False  # typing is not imported at run time (a deploy without click loads this module)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO

    from rich import console as rich_console
    from rich import progress as rich_progress
    from rich import text as rich_text

    from venvkeeper.core.results import Result
else:
    rich_console = lazy("rich.console")
    rich_progress = lazy("rich.progress")
    rich_text = lazy("rich.text")

__all__ = ["Terminal", "wanted", "watched"]


def wanted(*, as_json: bool, quiet: bool, stream: IO[str] | None = None) -> bool:
    """Progress is shown on a terminal only, and never with --json or --quiet."""
    stream = sys.stderr if stream is None else stream
    if as_json or quiet or stream is None:
        return False
    try:
        return stream.isatty()
    except (OSError, ValueError):  # closed, or not a real file
        return False


def watched(action: Callable[[], Result], *, as_json: bool, quiet: bool) -> Callable[[], Result]:
    """``action``, showing its steps on stderr when :func:`wanted`; else ``action`` itself."""
    if not wanted(as_json=as_json, quiet=quiet):
        return action
    return functools.partial(_shown, action)


def _shown(action: Callable[[], Result]) -> Result:
    terminal = Terminal(sys.stderr)
    try:
        with progress.reporting(terminal):
            return action()
    finally:
        # Before the caller prints the error or the result: the live display is gone by then.
        terminal.close()


class Terminal:
    """A :class:`venvkeeper.core.progress.Reporter` drawing with rich on ``stream`` (a terminal).

    Steps start and end in several threads (the member builds beside the sync, the smoke check beside
    the seal). rich positions a line printed above its live display when it renders it, but writes it
    later, outside its own lock: a redraw by another thread in between (its refresh thread, another
    step) then erases the wrong number of lines, leaving a stale spinner or wiping a finished step.
    So everything drawn goes through one lock here, and the refresh thread is ours, under that lock.

    The display never fails the command: a terminal gone while it runs (the session closed: EIO, a
    closed stream) ends the display, and the deploy goes on as it would have without it."""

    _REFRESH_S = 0.1

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._bar: rich_progress.Progress | None = None
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None
        self._tasks: dict[int, _Task] = {}

    def _progress(self) -> rich_progress.Progress | None:
        """The display, started at the first step (called under the lock); None once closed."""
        if self._bar is None and not self._closed.is_set():
            console = rich_console.Console(file=self._stream, highlight=False)
            self._bar = rich_progress.Progress(
                rich_progress.SpinnerColumn(),
                rich_progress.TextColumn("{task.description}", markup=False),  # a hook's [brackets]
                rich_progress.TimeElapsedColumn(),
                console=console,
                transient=True,
                auto_refresh=False,  # _tick refreshes, under the lock
                # stdout is the result's (a pipe, maybe): nothing written there goes to stderr.
                redirect_stdout=False,
            )
            self._bar.start()
            self._ticker = threading.Thread(target=self._tick, name="venvkeeper-progress", daemon=True)
            self._ticker.start()
        return self._bar

    @contextlib.contextmanager
    def _drawing(self) -> Iterator[None]:
        """Under the lock; an error writing to the terminal closes the display, never the command."""
        with self._lock:
            try:
                yield
            except (OSError, ValueError):
                self._closed.set()
                self._bar = None

    def _tick(self) -> None:
        while not self._closed.wait(self._REFRESH_S):
            with self._drawing():
                if self._bar is not None and not self._closed.is_set():
                    self._bar.refresh()

    def started(self, key: int, label: str, total: int | None) -> None:
        with self._drawing():
            bar = self._progress()
            if bar is not None:
                self._tasks[key] = _Task(bar.add_task(_counted(label, 0, total), total=total), label, total)
                bar.refresh()

    def advanced(self, key: int, amount: int) -> None:
        with self._drawing():
            task = self._tasks.get(key)
            if self._bar is not None and task is not None:
                task.done += amount
                self._bar.update(
                    task.id, completed=task.done, description=_counted(task.label, task.done, task.total)
                )

    def finished(self, key: int, summary: str, *, ok: bool, seconds: float) -> None:
        with self._drawing():
            task = self._tasks.pop(key, None)
            if self._bar is None or task is None:
                return
            self._bar.remove_task(task.id)
            line = rich_text.Text()
            line.append("✓ " if ok else "✗ ", style="green" if ok else "red")
            line.append(summary)
            line.append(f"  {seconds:.1f}s", style="dim")
            self._bar.console.print(line)
            self._bar.refresh()

    def close(self) -> None:
        """Stop and erase the live display (the finished steps' lines stay). Idempotent."""
        self._closed.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._drawing():
            if self._bar is not None:
                self._bar.stop()
                self._bar = None


class _Task:
    __slots__ = ("done", "id", "label", "total")

    def __init__(self, task_id: rich_progress.TaskID, label: str, total: int | None) -> None:
        self.id, self.label, self.total, self.done = task_id, label, total, 0


def _counted(label: str, done: int, total: int | None) -> str:
    return label if total is None else f"{label} {done}/{total}"
