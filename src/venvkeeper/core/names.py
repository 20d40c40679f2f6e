"""Package names, compared as PEP 503 says (without importing packaging on the timed paths)."""

from __future__ import annotations

import re

__all__ = ["canonicalize_name"]

_SEPARATORS = re.compile(r"[-_.]+")


def canonicalize_name(name: str) -> str:
    """packaging.utils.canonicalize_name: runs of -, _ and . become one -, lower case."""
    return _SEPARATORS.sub("-", name).lower()
