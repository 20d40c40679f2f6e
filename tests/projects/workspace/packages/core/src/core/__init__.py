"""The webapp's core library, built with setuptools."""

__version__ = "0.1.0"


def greeting(name: str) -> str:
    return f"hello, {name}"
