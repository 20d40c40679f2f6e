"""The fleet test's service: prints its release, which the test edits to make a new generation."""

RELEASE = "1"


def main() -> None:
    print(f"fleetsite release {RELEASE}")
