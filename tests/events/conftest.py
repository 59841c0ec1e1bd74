"""A real uvicorn server in this process (its event loop in a thread, so a test can count its
asyncio tasks and the database pool), and a worker thread that trains queued jobs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service.api.app import create_app
from service.config import Settings
from service.jobs.runner import JobRunner
from service.store import jobs as job_rows
from service.store.session import Database
from service.workers.executor import NoExecutor
from tests.e2e.conftest import free_port


@dataclass
class LiveServer:
    app: FastAPI
    loop: asyncio.AbstractEventLoop
    url: str
    db: Database
    settings: Settings

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def in_loop(self, function: Callable[[], Any]) -> Any:
        """`function()` run on the server's event loop; its result."""
        async def call() -> Any:
            return function()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def tasks(self) -> int:
        return self.in_loop(lambda: len(asyncio.all_tasks()))

    @property
    def hub(self) -> Any:
        return self.app.state.dropnet.events


def start_server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    app = create_app(settings, db=db, executor=NoExecutor())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield LiveServer(app, loop, f"http://127.0.0.1:{port}", db, settings)
    server.should_exit = True
    thread.join(30)
    # sse-starlette's one shutdown watcher per loop outlives the server: end it too.
    leftover = asyncio.all_tasks(loop)
    for task in leftover:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
    loop.close()


@pytest.fixture
def events_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, workers=0, heartbeat_seconds=0.1,
                    lease_seconds=5.0, poll_seconds=0.2, events_poll_seconds=0.05,
                    events_keepalive_seconds=0.2, _env_file=None)


@pytest.fixture
def live(events_settings: Settings, db: Database) -> Iterator[LiveServer]:
    yield from start_server(events_settings, db)


@pytest.fixture
def train(db: Database, events_settings: Settings) -> Iterator[Callable[..., threading.Thread]]:
    """train() starts a thread that runs the queued jobs as a worker does, to the end."""
    threads: list[threading.Thread] = []

    def start() -> threading.Thread:
        runner = JobRunner(db, events_settings,
                           job_rows.WorkerIdentity(id="events-test", host="test", pid=1))

        def work() -> None:
            while runner.run() is not None:
                pass

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(120)
