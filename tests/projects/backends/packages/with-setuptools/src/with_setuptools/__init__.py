"""A member built with setuptools."""

__version__ = "0.1.0"
BACKEND = "setuptools"
