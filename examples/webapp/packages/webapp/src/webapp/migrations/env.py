"""Alembic environment: the URL comes from sitecore, never from the source tree."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sitecore import database_url


def run_migrations_online() -> None:
    engine = create_engine(database_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
