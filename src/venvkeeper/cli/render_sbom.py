"""``venvkeeper sbom``'s text: the document itself on stdout (or where it was written), and on stderr
whether it was built now because the generation has none."""

from __future__ import annotations

from typing import TextIO

from venvkeeper.core.results import Result
from venvkeeper.sbom.result import SbomResult

__all__ = ["render"]


def render(result: Result, out: TextIO, err: TextIO) -> None:
    if not isinstance(result, SbomResult):
        raise TypeError(f"not an sbom result: {result!r}")
    if result.built_now:
        where = f"generation {result.generation}" if result.generation is not None else result.source
        err.write(f"note: {where} has no SBOM file ({result.built_now})\n")
    if result.output is None:
        out.write(result.document.decode())
        return
    out.write(f"{result.source}: SBOM written to {result.output} (sha256 {result.sha256})\n")
