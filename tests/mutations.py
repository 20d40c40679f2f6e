"""Break a key guard on purpose and show that the tests notice (docs/architecture.md, "Tests that can fail").

    .venv/bin/python tests/mutations.py [NAME ...]

Each mutation replaces one exact piece of venvkeeper's source (it must occur exactly once, so the
mutation cannot silently stop applying when the code moves), runs the tests named for it, and restores
the file whatever happens. A mutation is *caught* when at least one of those tests fails. The script
exits 0 only when every mutation it ran was caught.

Not collected by pytest (the name does not start with ``test_``): it runs pytest itself, and changes
source files while it runs, so run it in a clean working tree and let it finish.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "venvkeeper"


@dataclass(frozen=True)
class Mutation:
    name: str
    guard: str  # what the guard protects, in a user's words
    path: str  # relative to src/venvkeeper
    original: str
    mutated: str
    tests: tuple[str, ...]  # pytest node ids or -k free arguments


MUTATIONS: tuple[Mutation, ...] = ()


def run(mutation: Mutation) -> tuple[bool, str]:
    """Apply ``mutation``, run its tests, restore the file: (caught, pytest's last line)."""
    path = SRC / mutation.path
    original = path.read_text(encoding="utf-8")
    count = original.count(mutation.original)
    if count != 1:
        raise SystemExit(f"{mutation.name}: the guarded code occurs {count} times in {path}, not once")
    try:
        path.write_text(original.replace(mutation.original, mutation.mutated), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-n0", "-pno:cacheprovider", *mutation.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        path.write_text(original, encoding="utf-8")
    last = next((line for line in reversed(proc.stdout.splitlines()) if line.strip()), "")
    return proc.returncode == 1, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    missed = 0
    for mutation in chosen:
        caught, last = run(mutation)
        missed += not caught
        verdict = "caught" if caught else "MISSED"
        print(f"{verdict}  {mutation.name}: {mutation.guard}\n        {last}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
