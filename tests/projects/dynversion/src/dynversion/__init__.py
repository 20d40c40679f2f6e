"""A member whose version lives here, read by hatchling at build time."""

__version__ = "0.27.1"


def main() -> int:
    print(f"dynversion {__version__}")
    return 0
