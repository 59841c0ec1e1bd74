"""Every status change of a job is recorded in its transaction, numbered 1, 2, ... per job,
and on PostgreSQL notified at commit (never for a rolled-back transaction)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest

from service.store import jobs as job_rows
from service.store import status_events
from service.store.notifications import JobListener
from service.store.session import Database
from tests.conftest import drop_postgres, fresh_postgres
from tests.factories import DIGITS_SPEC

WORKER = job_rows.WorkerIdentity(id="w1", host="host-a", pid=101)


def create(session, job_id: str = "a" * 32):
    return job_rows.create(session, job_id=job_id, owner="", name="j", spec=DIGITS_SPEC,
                           dataset_id=None, total_iterations=60)


def history(db, job_id: str) -> list[tuple[int, str, int, str | None]]:
    with db.read() as session:
        return [(e.seq, e.status.value, e.attempts, e.error)
                for e in status_events.after(session, [job_id], {})]


def test_every_transition_is_recorded_in_order(db):
    with db.write() as session:
        job_id = create(session).id
    with db.write() as session:
        first = job_rows.claim(session, WORKER, lease_seconds=30)
    with db.write() as session:
        job_rows.renew(session, first, lease_seconds=30, progress={"iteration": 40})
        assert job_rows.release(session, first)
    with db.write() as session:
        second = job_rows.claim(session, WORKER, lease_seconds=30)
    with db.write() as session:  # the lease expires: the reaper requeues it
        job_rows.expire_worker(session, host="host-a", pid=101)
    with db.write() as session:
        job_rows.reap_expired(session, max_attempts=5,
                              now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))
    with db.write() as session:
        third = job_rows.claim(session, WORKER, lease_seconds=30)
        assert job_rows.finish(session, third, status=job_rows.FAILED, error="boom")
    with db.write() as session:  # fenced: the second attempt's finish records nothing
        assert not job_rows.finish(session, second, status=job_rows.SUCCEEDED)
    assert history(db, job_id) == [
        (1, "queued", 0, None), (2, "running", 1, None), (3, "queued", 1, None),
        (4, "running", 2, None), (5, "queued", 2, None), (6, "running", 3, None),
        (7, "failed", 3, "boom")]
    with db.read() as session:
        assert status_events.last_seq(session, [job_id, "b" * 32]) == {job_id: 7, "b" * 32: 0}
        assert [e.seq for e in status_events.after(session, [job_id], {job_id: 5})] == [6, 7]
        assert status_events.after(session, [job_id], {job_id: 5})[0].iteration == 40


def test_cancelling_a_queued_job_is_recorded_and_a_running_one_waits(db):
    with db.write() as session:
        queued, running = create(session, "q" * 32), create(session, "r" * 32)
    with db.write() as session:
        job_rows.claim(session, WORKER, lease_seconds=30, job_id=running.id)
    with db.write() as session:
        for job_id in (queued.id, running.id):
            job_rows.request_cancel(session, job_rows.get(session, job_id))
    assert [s for _, s, _, _ in history(db, queued.id)] == ["queued", "cancelled"]
    assert [s for _, s, _, _ in history(db, running.id)] == ["queued", "running"]


@pytest.fixture
def postgres_db(postgres_template: str) -> Iterator[Database]:
    """PostgreSQL only: NOTIFY is PostgreSQL's (SQLite streams poll, tests/events/)."""
    url, name = fresh_postgres(postgres_template)
    database = Database(url)
    yield database
    database.dispose()
    drop_postgres(name)


@pytest.mark.postgres
def test_postgres_notifies_listeners_at_commit_only(postgres_db: Database) -> None:
    db = postgres_db

    async def scenario() -> tuple[set[str], set[str]]:
        async with JobListener(db.url) as listener:
            assert await listener.changed(0.2) == set()
            with pytest.raises(RuntimeError), db.write() as session:
                create(session, "x" * 32)
                raise RuntimeError("rolled back")
            rolled_back = await listener.changed(0.5)
            with db.write() as session:
                create(session, "y" * 32)
            return rolled_back, await listener.changed(5.0)

    rolled_back, committed = asyncio.run(scenario())
    assert rolled_back == set()
    assert committed == {"y" * 32}
