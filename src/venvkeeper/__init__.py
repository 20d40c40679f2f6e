"""venvkeeper: keep every deployed Python environment exactly what its committed lock says."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
