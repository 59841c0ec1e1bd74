"""Lease expiry is decided on the database's clock: a worker whose clock is an hour off neither
steals live jobs nor loses its own (PostgreSQL: the server's now(); SQLite is one machine's
file, whose processes share one clock)."""

from __future__ import annotations

import datetime as dt

import pytest

from service.store import jobs as job_rows
from service.store.base import utcnow
from service.store.models import Job
from tests.factories import add_queued_job

pytestmark = pytest.mark.postgres

WORKER = job_rows.WorkerIdentity(id="w1", host="host-a", pid=101)


@pytest.fixture
def pg_db(request, postgres_template):
    from service.store.session import Database
    from tests.conftest import drop_postgres, fresh_postgres

    url, name = fresh_postgres(postgres_template)
    database = Database(url)
    yield database
    database.dispose()
    drop_postgres(name)


def skewed(monkeypatch, hours: float) -> None:
    """This process's clock, as the store reads it, runs `hours` off."""
    monkeypatch.setattr(job_rows, "utcnow", lambda: utcnow() + dt.timedelta(hours=hours))


def claim_one(db, lease_seconds: float = 30.0) -> job_rows.Claim:
    with db.write() as session:
        add_queued_job(session)
    with db.write() as session:
        claim = job_rows.claim(session, WORKER, lease_seconds=lease_seconds)
    assert claim is not None
    return claim


def reap(db) -> list[tuple[str, job_rows.JobStatus]]:
    with db.write() as session:
        return job_rows.reap_expired(session, max_attempts=3)


def status(db, job_id: str) -> str:
    with db.read() as session:
        return session.get(Job, job_id).status


def test_a_reaper_an_hour_fast_does_not_steal_a_live_job(pg_db, monkeypatch):
    claim = claim_one(pg_db)
    skewed(monkeypatch, +1)
    assert reap(pg_db) == []
    assert status(pg_db, claim.job_id) == "running"


def test_a_worker_an_hour_slow_keeps_its_own_lease(pg_db, monkeypatch):
    skewed(monkeypatch, -1)
    claim = claim_one(pg_db)
    with pg_db.write() as session:
        assert job_rows.renew(session, claim, lease_seconds=30, progress={}) is False
    monkeypatch.undo()
    assert reap(pg_db) == [], "its lease runs 30 s from the database's now, not an hour ago"
    assert status(pg_db, claim.job_id) == "running"


def test_an_expired_lease_is_reaped_whatever_the_reapers_clock(pg_db, monkeypatch):
    claim = claim_one(pg_db, lease_seconds=0.2)
    skewed(monkeypatch, -1)  # a slow reaper still sees the lease as expired
    import time

    time.sleep(0.5)
    assert reap(pg_db) == [(claim.job_id, "queued")]
