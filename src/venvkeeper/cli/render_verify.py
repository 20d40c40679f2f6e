"""Human text for ``venvkeeper verify`` (``--json`` is the result's own).

On verify's timed path: no typing at run time, and nothing of the other commands.
"""

from __future__ import annotations

from venvkeeper.core.lazy import lazy
from venvkeeper.verify.result import ReceiptResult, VerifyResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    import json
    from typing import TextIO

    from venvkeeper.core.results import Result
else:
    json = lazy("json")  # a receipt printed whole; verify's own answer does without

__all__ = ["render"]


def _receipt(result: ReceiptResult, out: TextIO) -> None:
    predicate = result.statement["predicate"]
    if result.output is None:
        out.write(json.dumps(result.envelope, indent=2) + "\n")  # the receipt itself, for a pipe
        return
    out.write(
        f"{result.env} (generation {predicate['generation']}): receipt signed (key {result.keyid[:16]}), "
        f"written to {result.output}\n"
    )


def render(result: Result, out: TextIO, err: TextIO) -> None:
    if isinstance(result, ReceiptResult):
        _receipt(result, out)
        return
    if not isinstance(result, VerifyResult):
        raise TypeError(f"not a verify result: {result!r}")
    where = f" (generation {result.generation})" if result.generation is not None else f" ({result.kind})"
    hashed = f", {result.bytes_hashed / 1e6:.1f} MB hashed" if not result.fast else ", sizes only (--fast)"
    count = len(result.findings)
    verdict = "clean" if not count else f"{count} finding{'s' if count != 1 else ''}"
    out.write(f"{result.env}{where}: {verdict} ({result.files} files{hashed}) [{result.duration_s:.2f}s]\n")
    for f in result.findings:
        subject = " ".join(x for x in (f.distribution, f.path) if x)
        out.write(f"  {f.category:<21} {subject}\n")
        if f.expected is not None or f.actual is not None:
            out.write(f"      expected {f.expected or '-'}, found {f.actual or '-'}")
            out.write(f" ({f.reference})\n" if f.reference else "\n")
        if f.files:
            kinds = ", ".join(sorted({x["category"] for x in f.files}))
            out.write(f"      and {len(f.files)} of its files ({kinds})\n")
        if f.cache:
            out.write(f"      a hard link into uv's cache ({f.cache}): the cache is damaged too;\n")
            out.write("      `venvkeeper deploy --repair` refreshes it and rebuilds\n")
        if f.fix:
            out.write(f"      {f.fix}\n")
    for check in result.checks:
        if check.name == "receipt":
            out.write(f"  receipt {check.status}: {check.reason}\n")
        elif check.status in ("not-possible", "skipped"):
            out.write(f"  {check.name} check {check.status.replace('-', ' ')}: {check.reason}\n")
