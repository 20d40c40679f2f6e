"""A single-project app; ``single`` prints what it runs on."""

import tinyutil

__version__ = "0.1.0"


def main() -> int:
    print(f"single {__version__} (tinyutil {tinyutil.__version__})")
    return 0
