"""Alembic, driven from code: upgrade a database to head, read its revision."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url


def printable_url(database_url: str) -> str:
    """`database_url` with its password replaced by ***, for logs and terminal output."""
    return make_url(database_url).render_as_string(hide_password=True)


def migrations_dir() -> Path:
    """The Alembic scripts: migrations/ in a checkout, service/_migrations when installed."""
    spec = importlib.util.find_spec("service._migrations")
    if spec is None or spec.origin is None:
        raise RuntimeError("the package service._migrations (the Alembic scripts) is missing")
    return Path(spec.origin).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database's schema to `revision` (creating the database file if needed)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory(str(migrations_dir())).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def answering_revision(engine: Engine) -> str | None:
    """The database's migration revision, after checking that it answers a query (raises
    whatever the driver raises when it does not)."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        return current_revision(connection)
