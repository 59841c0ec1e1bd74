"""200 streams opened and dropped leave no task, database connection or memory behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.events.conftest import LiveServer
from tests.events.sse import Event, aparse
from tests.factories import spec

STREAMS = 200


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


async def open_and_drop(url: str, job_id: str, live: LiveServer) -> tuple[int, int]:
    """Open STREAMS streams, read each one's first event, then drop every connection.
    (subscriptions, LISTEN connections) while all were open."""
    limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def first_event(opened: list[tuple[httpx.Response, object]]) -> None:
            response = await client.send(client.build_request(
                "GET", f"/v1/jobs/{job_id}/events"), stream=True)
            items = aparse(response.aiter_lines())
            opened.append((response, items))  # held: a collected line iterator closes it
            async for item in items:
                if isinstance(item, Event):  # keep-alive comments may come first
                    assert item.type == "status"
                    return

        opened: list[tuple[httpx.Response, object]] = []
        await asyncio.gather(*(first_event(opened) for _ in range(STREAMS)))
        peak = live.in_loop(lambda: live.hub.streams)
        listeners = 0 if live.db.is_sqlite else listening_backends(live.settings.database_url)
        for response, _ in opened:
            await response.aclose()
    return peak, listeners


def settle(live: LiveServer, baseline_tasks: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (live.in_loop(lambda: live.hub.streams) == 0 and live.tasks() <= baseline_tasks
                and live.db.engine.pool.checkedout() == 0):
            return
        time.sleep(0.05)


def listening_backends(database_url: str) -> int:
    """Connections to this PostgreSQL database whose last statement was a LISTEN."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'LISTEN%'")) or 0)
    finally:
        engine.dispose()


def test_two_hundred_dropped_streams_leave_nothing_behind(live: LiveServer) -> None:
    with live.client() as client:
        job_id = client.post("/v1/jobs", json=spec(iterations=5000)).json()["id"]
    postgres = not live.db.is_sqlite
    # Warm up once (first-use allocations, sse-starlette's one shutdown watcher per loop).
    asyncio.run(open_and_drop(live.url, job_id, live))
    settle(live, baseline_tasks=10_000)
    tasks, rss = live.tasks(), rss_bytes()
    for _ in range(2):
        peak, listeners = asyncio.run(open_and_drop(live.url, job_id, live))
        assert peak == STREAMS
        assert listeners == (0 if live.db.is_sqlite else 1)  # one LISTEN for all streams
        settle(live, tasks)
        assert live.in_loop(lambda: live.hub.streams) == 0
        assert live.tasks() == tasks, "asyncio tasks left behind"
        assert live.db.engine.pool.checkedout() == 0, "database connections left checked out"
        assert live.in_loop(lambda: live.hub._task) is None, "the hub's task still runs"
        if postgres:
            assert listening_backends(live.settings.database_url) == 0
    grown = rss_bytes() - rss
    assert grown < 20 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB over 400 streams"
