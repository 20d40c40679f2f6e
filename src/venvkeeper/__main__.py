"""``python -m venvkeeper``."""

from __future__ import annotations

from venvkeeper.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
