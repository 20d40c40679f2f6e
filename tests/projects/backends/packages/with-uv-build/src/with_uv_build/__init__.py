"""A member built with uv_build."""

__version__ = "0.1.0"
BACKEND = "uv_build"
