"""One app on one fresh database for a whole test module, for suites of many requests that
store nothing they depend on (each PostgreSQL database costs a second or two to create)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.store.session import Database
from service.workers.executor import NoExecutor
from tests.conftest import drop_postgres, fresh_postgres

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""params= for a module-scoped fixture that calls `shared_client`."""


@contextmanager
def shared_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  **settings: Any) -> Iterator[TestClient]:
    """A TestClient on a database of `request.param` ("sqlite" or "postgres")."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("shared") / "dropnet.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url, name = f"sqlite:///{path}", None
    else:
        url, name = fresh_postgres(request.getfixturevalue("postgres_template"))
    db = Database(url)
    config = Settings(database_url=url, workers=0, _env_file=None, **settings)
    try:
        with TestClient(create_app(config, db=db, executor=NoExecutor()),
                        raise_server_exceptions=False) as client:
            yield client
    finally:
        db.dispose()
        if name is not None:
            drop_postgres(name)
