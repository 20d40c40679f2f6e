"""Print the corpus suite's results as a project x step table (Markdown).

    python tests/e2e/corpus_table.py [RESULTS.jsonl]

Without an argument it reads ``<cache>/results/latest.jsonl`` (see ``tests/e2e/conftest.py``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

_MARK = {"passed": "ok", "failed": "FAIL", "skipped": "skip"}


def main(argv: list[str]) -> int:
    root = Path(os.environ.get("VENVKEEPER_E2E_CACHE") or Path.home() / ".cache" / "venvkeeper-e2e")
    path = Path(argv[0]) if argv else root / "results" / "latest.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    projects = list(dict.fromkeys(r["project"] for r in records))
    steps = list(dict.fromkeys(r["step"].removeprefix("test_") for r in records))
    cell = {
        (r["project"], r["step"].removeprefix("test_")): _MARK.get(r["outcome"], r["outcome"])
        for r in records
    }
    print("| step | " + " | ".join(projects) + " |")
    print("| --- |" + " --- |" * len(projects))
    for step in steps:
        print(f"| {step} | " + " | ".join(cell.get((p, step), "-") for p in projects) + " |")
    print()
    for r in records:
        if r["outcome"] != "passed":
            print(f"- {r['project']} / {r['step']}: {r['error'][:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
