"""A path dependency whose version setuptools reads from here (``attr:``)."""

__version__ = "3.1.4"
