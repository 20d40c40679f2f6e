"""A member built with flit-core."""

__version__ = "0.1.0"
BACKEND = "flit-core"
