"""Human text for ``export``, ``pack`` and ``keygen`` (``--json`` is the result's own)."""

from __future__ import annotations

from typing import TextIO

from venvkeeper.bundle.export import ExportResult
from venvkeeper.bundle.keys import KeygenResult
from venvkeeper.bundle.pack import PackResult
from venvkeeper.core.results import Result

__all__ = ["render"]


def render(result: Result, out: TextIO, err: TextIO) -> None:
    if isinstance(result, ExportResult):
        _export(result, out)
    elif isinstance(result, PackResult):
        signed = ", signed" if result.signed else ""
        out.write(
            f"packed {result.wheels} wheels ({result.wheels_size} bytes) into {result.output}: "
            f"{result.size} bytes{signed}, sha256 {result.sha256[:16]} [{result.duration_s:.2f}s]\n"
        )
    elif isinstance(result, KeygenResult):
        out.write(f"wrote {result.private_key} (private, 0600) and {result.public_key}\n")
    else:
        raise TypeError(f"not an export, pack or keygen result: {result!r}")


def _export(result: ExportResult, out: TextIO) -> None:
    if result.output is None:
        out.write(result.content)  # the file itself, for a pipe
    else:
        out.write(f"wrote {result.format} to {result.output} (sha256 {result.sha256[:16]})\n")
