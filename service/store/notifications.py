"""Change notifications between processes: PostgreSQL NOTIFY in the writer's transaction, and
LISTEN in the API process (service.events' hub). SQLite has neither: readers poll.

The payload is a job id. NOTIFY is delivered at COMMIT (never for a rolled-back transaction),
so a listener that is told "job X changed" can read the change at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

CHANNEL = "dropnet_jobs"


def notify(session: Session, job_ids: Iterable[str]) -> None:
    """Tell listeners (at this transaction's commit) that these jobs changed; no-op on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for job_id in job_ids:
        session.execute(select(func.pg_notify(CHANNEL, job_id)))


class JobListener:
    """LISTEN on PostgreSQL with one dedicated asynchronous psycopg connection.

    `async with JobListener(url) as listener:` connects and listens; `await listener.changed(
    timeout)` is the set of job ids notified (empty after `timeout` seconds without any)."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._connection: Any = None

    async def __aenter__(self) -> JobListener:
        import psycopg

        self._connection = await psycopg.AsyncConnection.connect(self._conninfo,
                                                                 autocommit=True)
        await self._connection.execute(f"LISTEN {CHANNEL}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a connection the server already dropped
                await self._connection.close()
            self._connection = None

    async def changed(self, timeout: float) -> set[str]:
        """Job ids notified: waits up to `timeout` for the first, then takes those already
        arrived (a burst of commits becomes one set)."""
        ids: set[str] = set()
        async for note in self._notes(timeout=timeout, stop_after=1):
            ids.add(note.payload)
        if ids:
            async for note in self._notes(timeout=0.001):
                ids.add(note.payload)
        return ids

    def _notes(self, **options: Any) -> AsyncIterator[Any]:
        return self._connection.notifies(**options)
