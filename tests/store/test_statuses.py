"""Statuses are stored as their strings and read back as enum members, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from service.store import jobs as job_rows
from service.store.models import Job, JobAttempt
from service.store.session import Database
from service.store.statuses import AttemptOutcome, JobStatus
from tests.factories import add_queued_job

WORKER = job_rows.WorkerIdentity(id="w1", host="h", pid=1)


def test_statuses_are_stored_as_strings_and_read_as_members(db: Database) -> None:
    with db.write() as session:
        job_id = add_queued_job(session).id
        claim = job_rows.claim(session, WORKER, lease_seconds=30)
        assert claim is not None
        job_rows.release(session, claim)
    with db.read() as session:
        stored = session.execute(text("SELECT status FROM jobs")).scalar_one()
        outcome = session.execute(text("SELECT outcome FROM job_attempts")).scalar_one()
        assert (type(stored), stored, type(outcome), outcome) == (str, "queued", str, "released")
        job = session.get(Job, job_id)
        [attempt] = session.query(JobAttempt).all()
        assert job.status is JobStatus.QUEUED and attempt.outcome is AttemptOutcome.RELEASED


def test_a_status_outside_the_enum_is_refused_before_the_database(db: Database) -> None:
    with pytest.raises(StatementError, match="'finished' is not a valid JobStatus"), \
            db.write() as session:
        add_queued_job(session).status = "finished"  # type: ignore[assignment]
        session.flush()
