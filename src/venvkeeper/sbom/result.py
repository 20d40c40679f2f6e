"""``venvkeeper sbom``'s result: the document (printed whole, or written to ``-o``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from venvkeeper.core.results import Result

__all__ = ["SbomResult"]


class SbomResult(Result):
    def __init__(
        self,
        *,
        source: str,
        document: bytes,
        generation: int | None = None,
        output: str | None = None,
        built_now: str = "",
    ) -> None:
        self.command = "sbom"
        self.source = source  # --env as given, or the bundle's path
        self.document = document
        self.generation = generation
        self.output = output
        # Why it was built now rather than read (a generation made before SBOMs), or "".
        self.built_now = built_now

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.document).hexdigest()

    def payload(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "generation": self.generation,
            "output": self.output,
            "sha256": self.sha256,
            "built_now": self.built_now or None,
            # The document itself, unless it was written to a file (then its sha256 says which).
            "sbom": json.loads(self.document) if self.output is None else None,
        }
