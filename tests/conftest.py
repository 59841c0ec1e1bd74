"""Shared fixtures: a fresh, migrated database per test on SQLite and (when reachable) PostgreSQL.

PostgreSQL and Redis tests run against real servers: DROPNET_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test) and DROPNET_TEST_REDIS_URL (default
redis://127.0.0.1:6379/15). Without a server those tests skip with the reason, unless
DROPNET_TEST_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.config import Settings
from service.store.schema import upgrade
from service.store.session import Database

POSTGRES_URL = os.environ.get("DROPNET_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_XDIST_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
REDIS_URL = os.environ.get("DROPNET_TEST_REDIS_URL",
                           f"redis://127.0.0.1:6379/{15 - _XDIST_WORKER}")
"""Redis database 15, 14, ... for pytest-xdist's workers gw0, gw1, ...: a worker's Celery tests
flush their broker and must not take another worker's doorbells."""
REQUIRE_SERVICES = os.environ.get("DROPNET_TEST_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> str | None:
    """None when a TCP connection to the URL's host works, else the reason it does not."""
    parsed = make_url(url)
    host, port = parsed.host or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return None
    except OSError as error:
        return f"{host}:{port} unreachable ({error})"


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip (or, with DROPNET_TEST_REQUIRE_SERVICES=1, fail) when the server is down."""
    reason = _reachable(url, default_port)
    if reason is None:
        return
    message = f"{name} is not available: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (DROPNET_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(message)


# -- databases -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once; tests get databases cloned from it."""
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    name = f"dropnet_template_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    create_engine(url).dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_postgres(template: str) -> tuple[str, str]:
    """(url, name) of a new database cloned from the migrated template."""
    name = f"dropnet_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(
            f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY'))
    admin.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False), name


def drop_postgres(name: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the migrations' head, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "dropnet.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url, name = fresh_postgres(request.getfixturevalue("postgres_template"))
    yield url
    drop_postgres(name)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite database at head (for tests about SQLite itself)."""
    path = tmp_path / "dropnet.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, busy_timeout_seconds=30)
    yield database
    database.dispose()


@pytest.fixture
def postgres_db(postgres_template: str) -> Iterator[Database]:
    """A fresh PostgreSQL database at head (for tests about PostgreSQL itself)."""
    url, name = fresh_postgres(postgres_template)
    database = Database(url)
    yield database
    database.dispose()
    drop_postgres(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for in-process tests: no local worker processes, fast heartbeats."""
    return Settings(database_url=database_url, workers=0, heartbeat_seconds=0.2,
                    lease_seconds=5.0, poll_seconds=0.2, _env_file=None)
