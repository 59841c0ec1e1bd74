"""Alembic owns the schema: it upgrades an empty database, round-trips, and matches the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service.store.base import Base
from service.store.schema import downgrade, head_revision, upgrade


def test_models_and_migrations_do_not_drift(database_url):
    engine = create_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert context.get_current_revision() == head_revision()
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_downgrade_to_base_and_upgrade_again(database_url):
    engine = create_engine(database_url)
    tables = set(inspect(engine).get_table_names())
    assert {"jobs", "metric_points", "metric_blocks", "models", "checkpoints"} <= tables
    downgrade(database_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(database_url)
    assert set(inspect(engine).get_table_names()) == tables
    engine.dispose()


def test_upgrade_creates_an_empty_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    upgrade(url)
    upgrade(url)  # idempotent at head
    engine = create_engine(url)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()
    engine.dispose()
