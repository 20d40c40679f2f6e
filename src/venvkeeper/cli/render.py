"""The one place that prints results: human text on a terminal, or one JSON object with --json.

The JSON envelope is each result's own (:meth:`venvkeeper.core.results.Result.to_json`) and an error
is printed here; the human text of a command's result comes from its capability's renderer
(``render_deploy``, ``render_verify``, ``render_doctor``, ``render_update``, ``render_bundle``),
imported when such a result is printed. So a no-op deploy, verify or doctor loads no other command's
result types (the bundle's would bring cryptography).
"""

from __future__ import annotations

import json
import os
import sys

from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.exitcodes import ExitCode
from venvkeeper.core.lazy import lazy

TYPE_CHECKING = False  # typing is not imported at run time: verify and doctor are timed
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol, TextIO

    from venvkeeper.cli import (
        render_audit,
        render_bundle,
        render_deploy,
        render_doctor,
        render_sbom,
        render_update,
        render_verify,
    )
    from venvkeeper.core.results import Result
    from venvkeeper.generations import results
    from venvkeeper.generations.results import ErrorResult

    class Renderer(Protocol):
        def render(self, result: Result, out: TextIO, err: TextIO) -> None: ...

else:
    render_bundle = lazy("venvkeeper.cli.render_bundle")
    render_audit = lazy("venvkeeper.cli.render_audit")
    render_deploy = lazy("venvkeeper.cli.render_deploy")
    render_doctor = lazy("venvkeeper.cli.render_doctor")
    render_sbom = lazy("venvkeeper.cli.render_sbom")
    render_update = lazy("venvkeeper.cli.render_update")
    render_verify = lazy("venvkeeper.cli.render_verify")
    results = lazy("venvkeeper.generations.results")  # dataclasses: only when a command failed

__all__ = ["RENDERERS", "discard_stdout", "render", "report"]

# The renderer of each result type, by the type's dotted name: a name, so that the lookup imports
# neither the result's module nor any renderer but the one that prints it. tests/test_architecture.py
# checks that every result type in venvkeeper is listed (an ErrorResult is printed here).
RENDERERS: dict[str, Renderer] = {
    "venvkeeper.generations.results.DeployResult": render_deploy,
    "venvkeeper.generations.results.CheckResult": render_deploy,
    "venvkeeper.generations.results.StatusResult": render_deploy,
    "venvkeeper.generations.results.RollbackResult": render_deploy,
    "venvkeeper.verify.result.VerifyResult": render_verify,
    "venvkeeper.verify.result.ReceiptResult": render_verify,
    "venvkeeper.audit.result.AuditResult": render_audit,
    "venvkeeper.doctor.result.DoctorResult": render_doctor,
    "venvkeeper.doctor.result.HealResult": render_doctor,
    "venvkeeper.update.result.UpdateResult": render_update,
    "venvkeeper.update.result.HistoryResult": render_update,
    "venvkeeper.bundle.export.ExportResult": render_bundle,
    "venvkeeper.bundle.pack.PackResult": render_bundle,
    "venvkeeper.bundle.exesign.VerifiedResult": render_bundle,
    "venvkeeper.bundle.exesign.RanResult": render_bundle,
    "venvkeeper.bundle.keys.KeygenResult": render_bundle,
    "venvkeeper.sbom.result.SbomResult": render_sbom,
}


def report(command: str, as_json: bool, action: Callable[[], Result]) -> ExitCode:
    """Run a command, translate venvkeeper's errors at this one boundary, render; return the exit code."""
    try:
        result: Result = action()
    except VenvkeeperError as exc:
        result = results.ErrorResult(
            command,
            code=exc.code,
            message=exc.message,
            hint=exc.hint,
            detail=exc.detail,
            exit=exc.exit_code,
            extra=exc.extra,
            cause=exc.cause,
        )
    except KeyboardInterrupt:
        result = results.ErrorResult(
            command,
            code="interrupted",
            message="interrupted",
            hint="nothing was switched",
            exit=ExitCode.FAILED,
        )
    try:
        render(result, as_json=as_json)
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()
    return result.exit_code


def discard_stdout() -> None:
    """Whoever read stdout has gone (``venvkeeper deploy | head -1``): send the rest to /dev/null.

    The work is done and its exit code stands: a reader that stopped early must not turn it into 1
    (click's EPIPE handling) or 120 (Python failing to flush stdout at exit), nor print a traceback.
    This is the recipe of Python's signal documentation ("Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to flush at exit
        pass


def render(result: Result, *, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
    out = out or sys.stdout
    err = err or sys.stderr
    if as_json:
        out.write(json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n")
        return
    renderer = RENDERERS.get(f"{type(result).__module__}.{type(result).__qualname__}")
    if renderer is not None:
        renderer.render(result, out, err)
    elif isinstance(result, results.ErrorResult):  # its module is loaded already: it made the result
        _error(result, err)
    else:  # pragma: no cover - every result type is listed in RENDERERS
        out.write(json.dumps(result.to_json()) + "\n")


def _error(result: ErrorResult, err: TextIO) -> None:
    err.write(f"error: {result.message}\n")
    if result.hint:
        err.write(f"hint: {result.hint}\n")
    if result.detail:
        err.write("\n".join(f"  | {line}" for line in result.detail.splitlines()) + "\n")
