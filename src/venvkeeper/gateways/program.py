"""Running a program in the foreground as the user's own (``venvkeeper run-executable``): its stdin,
stdout and stderr are the terminal's, and its exit status becomes venvkeeper's."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence

from venvkeeper.gateways.selfexec import clean_environ

__all__ = ["run_program"]


def run_program(argv: Sequence[str]) -> int:
    """Run ``argv`` to its end and return its exit status (128 + N when signal N ended it, as a shell says).

    Ctrl-C reaches the program (it is in the terminal's process group), which decides what to do;
    venvkeeper waits for it rather than leave it running behind the shell's prompt.
    """
    try:
        # Without the caller's PYTHONPATH and the like, whether or not they made venvkeeper
        # re-execute itself: the program runs its own interpreter, which another minor's standard
        # library would break (the carried-interpreter prefix drops them too).
        proc = subprocess.Popen(list(argv), env=clean_environ())  # a verified program, by its path
    except OSError as exc:
        return 127 if isinstance(exc, FileNotFoundError) else 126
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            continue
    return 128 + signal.Signals(-code).value if code < 0 else code
