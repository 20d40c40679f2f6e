"""The web app, built with hatchling; ``webapp`` prints what it runs on."""

import core
import tinydb
import tinyweb

__version__ = "0.1.0"


def main() -> int:
    versions = f"core {core.__version__}, tinyweb {tinyweb.__version__}, tinydb {tinydb.__version__}"
    print(f"webapp {__version__} ({versions})")
    print(core.greeting("world"))
    return 0
