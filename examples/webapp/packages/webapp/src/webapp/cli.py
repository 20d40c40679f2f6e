"""``webapp check``: prove the deployed code, its dependencies and the database agree."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["check"]:
        print("usage: webapp check", file=sys.stderr)
        return 2
    from sqlalchemy import create_engine, inspect

    from sitecore import GREETING, database_url
    from webapp import create_app

    client = create_app().test_client()
    body = client.get("/").get_data(as_text=True)
    tables = sorted(inspect(create_engine(database_url())).get_table_names())
    print(f"webapp: {body!r}; tables: {', '.join(tables) or '(none)'}")
    return 0 if body == GREETING and "greetings" in tables else 1


if __name__ == "__main__":
    raise SystemExit(main())
