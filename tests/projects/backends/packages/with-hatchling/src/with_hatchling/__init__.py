"""A member built with hatchling."""

__version__ = "0.1.0"
BACKEND = "hatchling"
