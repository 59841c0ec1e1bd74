"""Alembic environment: dropnet's metadata, and the URL from Settings or the caller."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from service.config import get_settings
from service.store import models  # noqa: F401  (registers the tables on Base.metadata)
from service.store.base import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("database_url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


MIGRATION_LOCK = 0x64726F70  # "drop": serialises concurrent upgrades on PostgreSQL


def _run(connection: Connection) -> None:
    # Several processes may start at once (the API and a migrate job): on PostgreSQL the first
    # takes an advisory lock and the others wait, then find the schema at head.
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        connection.commit()
    try:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if postgres:
            connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
