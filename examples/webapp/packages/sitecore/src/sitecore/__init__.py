"""Settings shared by the example site's members."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["GREETING", "database_url"]

GREETING = "hello from sitecore"


def database_url() -> str:
    """Where the site's database lives: never inside the source tree.

    ``WEBAPP_DATABASE_URL`` wins; otherwise the database sits beside the
    environment venvkeeper deployed (``VENVKEEPER_ENV``), or in the current
    user's home when run by hand.
    """
    explicit = os.environ.get("WEBAPP_DATABASE_URL")
    if explicit:
        return explicit
    env = os.environ.get("VENVKEEPER_ENV")
    base = Path(env).parent if env else Path.home()
    return f"sqlite:///{base / 'webapp.db'}"
