"""Lease expiry is decided on the database's clock: a worker whose clock is an hour off neither
steals live jobs nor loses its own (PostgreSQL: the server's now(); SQLite is one machine's
file, whose processes share one clock)."""

from __future__ import annotations

import datetime as dt

import pytest

from service.store import jobs as job_rows
from service.store.base import utcnow
from service.store.models import Job
from tests.factories import claimed_job

pytestmark = pytest.mark.postgres

def skewed(monkeypatch, hours: float) -> None:
    """This process's clock, as the store reads it, runs `hours` off."""
    monkeypatch.setattr(job_rows, "utcnow", lambda: utcnow() + dt.timedelta(hours=hours))


def reap(db) -> list[tuple[str, job_rows.JobStatus]]:
    with db.write() as session:
        return job_rows.reap_expired(session, max_attempts=3)


def status(db, job_id: str) -> str:
    with db.read() as session:
        return session.get(Job, job_id).status


def test_a_reaper_an_hour_fast_does_not_steal_a_live_job(postgres_db, monkeypatch):
    claim = claimed_job(postgres_db)
    skewed(monkeypatch, +1)
    assert reap(postgres_db) == []
    assert status(postgres_db, claim.job_id) == "running"


def test_a_worker_an_hour_slow_keeps_its_own_lease(postgres_db, monkeypatch):
    skewed(monkeypatch, -1)
    claim = claimed_job(postgres_db)
    with postgres_db.write() as session:
        assert job_rows.renew(session, claim, lease_seconds=30, progress={}) is False
    monkeypatch.undo()
    assert reap(postgres_db) == [], "its lease runs 30 s from the database's now, not an hour ago"
    assert status(postgres_db, claim.job_id) == "running"


def test_an_expired_lease_is_reaped_whatever_the_reapers_clock(postgres_db, monkeypatch):
    claim = claimed_job(postgres_db, lease_seconds=0.2)
    skewed(monkeypatch, -1)  # a slow reaper still sees the lease as expired
    import time

    time.sleep(0.5)
    assert reap(postgres_db) == [(claim.job_id, "queued")]
