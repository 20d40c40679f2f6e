"""A project whose version and dependencies only its build backend knows."""

__version__ = "0.4.0"


def main() -> int:
    import tinyutil

    print(f"dynamic {__version__} with tinyutil {tinyutil.__version__}")
    return 0
