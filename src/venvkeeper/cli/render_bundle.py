"""Human text for ``export``, ``pack``, ``keygen`` and ``run-executable`` (``--json`` is the result's own)."""

from __future__ import annotations

from typing import TextIO

from venvkeeper.bundle.exesign import RanResult, VerifiedResult
from venvkeeper.bundle.export import ExportResult
from venvkeeper.bundle.keys import KeygenResult
from venvkeeper.bundle.pack import PackResult
from venvkeeper.core.results import Result

__all__ = ["render"]


def render(result: Result, out: TextIO, err: TextIO) -> None:
    if isinstance(result, ExportResult):
        _export(result, out)
    elif isinstance(result, PackResult):
        _pack(result, out)
    elif isinstance(result, VerifiedResult):
        out.write(f"{result.file}: signature good ({result.signature}, key {result.public_key})\n")
    elif isinstance(result, RanResult):
        pass  # the program's output was all there was to show
    elif isinstance(result, KeygenResult):
        out.write(f"wrote {result.private_key} (private, 0600) and {result.public_key}\n")
    else:
        raise TypeError(f"not an export, pack or keygen result: {result!r}")


def _pack(result: PackResult, out: TextIO) -> None:
    signed = (f", signed ({result.signature})" if result.signature else ", signed") if result.signed else ""
    out.write(
        f"packed {result.wheels} wheels ({result.wheels_size} bytes) into {result.output}: "
        f"{result.size} bytes{signed}, sha256 {result.sha256[:16]} [{result.duration_s:.2f}s]\n"
    )
    if result.python is not None:
        python, needs = result.python, result.python["needs"]
        out.write(
            f"  carries Python {python['version']} ({python['machine']}) from {python['source']}"
            + (f"; it loads from the target system: {', '.join(needs)}" if needs else "")
            + "\n"
        )


def _export(result: ExportResult, out: TextIO) -> None:
    if result.output is None:
        out.write(result.content)  # the file itself, for a pipe
    else:
        out.write(f"wrote {result.format} to {result.output} (sha256 {result.sha256[:16]})\n")
