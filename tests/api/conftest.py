"""An app per test on a fresh database, and a runner that trains its queued jobs in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.jobs.runner import JobRunner
from service.store import jobs as job_rows
from service.store.session import Database
from service.workers.executor import NoExecutor


@pytest.fixture
def executor() -> NoExecutor:
    return NoExecutor()


@pytest.fixture
def client(settings: Settings, db: Database, executor: NoExecutor) -> Iterator[TestClient]:
    app = create_app(settings, db=db, executor=executor)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def keyed(database_url: str, db: Database) -> Iterator[TestClient]:
    """alice (key-a) and bob (key-b); webhooks may go to loopback; the app's sender polls
    every 0.1 s."""
    settings = Settings(database_url=database_url, workers=0, api_keys="alice:key-a,bob:key-b",
                        webhook_allowed_hosts="127.0.0.1", webhook_poll_seconds=0.1,
                        _env_file=None)
    app = create_app(settings, db=db, executor=NoExecutor())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def run_jobs(db: Database, settings: Settings) -> Callable[[], list[str]]:
    """Train every queued job now, as a worker would; returns their ids."""
    runner = JobRunner(db, settings, job_rows.WorkerIdentity(id="test", host="test", pid=1))

    def run() -> list[str]:
        done = []
        while (result := runner.run()) is not None:
            done.append(result.job_id)
        return done

    return run
