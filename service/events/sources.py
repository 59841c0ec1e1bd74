"""Where the hub learns that followed jobs changed: PostgreSQL notifications, or a poll.

Both answer `await source.changed(watched)`: the followed job ids that (may have) changed
since the last call, waiting at most `interval` seconds. The first call after connecting
answers every followed job, so nothing committed while the source was not listening is lost.
"""

from __future__ import annotations

from typing import Any, Protocol

import anyio.to_thread

from service.store import jobs as job_rows
from service.store.notifications import JobListener
from service.store.session import Database


class ChangeSource(Protocol):
    async def __aenter__(self) -> ChangeSource: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def changed(self, watched: set[str]) -> set[str]: ...


class NotifiedChanges:
    """PostgreSQL: the ids the writers' NOTIFY sent (store.notifications), on one LISTEN
    connection for the whole process."""

    def __init__(self, database_url: str, interval: float) -> None:
        self._listener = JobListener(database_url)
        self._interval = interval
        self._resync = True

    async def __aenter__(self) -> NotifiedChanges:
        await self._listener.__aenter__()
        self._resync = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._listener.__aexit__(*exc_info)

    async def changed(self, watched: set[str]) -> set[str]:
        if self._resync:
            self._resync = False
            return set(watched)
        return await self._listener.changed(self._interval) & watched


class PolledChanges:
    """SQLite (no notifications): every `interval` seconds, the followed jobs' change marks
    (updated_at, status, iteration) read by primary key in one query for all streams."""

    def __init__(self, db: Database, interval: float) -> None:
        self._db = db
        self._interval = interval
        self._marks: dict[str, tuple[Any, ...]] = {}

    async def __aenter__(self) -> PolledChanges:
        self._marks = {}
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._marks = {}

    async def changed(self, watched: set[str]) -> set[str]:
        await anyio.sleep(self._interval)
        marks = await anyio.to_thread.run_sync(self._read, sorted(watched))
        changed = {job_id for job_id in watched if marks.get(job_id) != self._marks.get(job_id)
                   or job_id not in self._marks}
        self._marks = marks
        return changed

    def _read(self, job_ids: list[str]) -> dict[str, tuple[Any, ...]]:
        with self._db.read() as session:
            return job_rows.change_marks(session, job_ids)
