"""The Lease: fenced renewals, cancel and loss recorded once, renewal on its own thread."""

import time

import pytest
from sqlalchemy import update

from service.jobs.lease import Lease, LeaseLost
from service.store import jobs as job_rows
from service.store.models import Job
from tests.factories import claimed_job


def expiry(db, job_id: str):
    with db.read() as session:
        return session.get(Job, job_id).lease_expires_at


def test_renew_records_progress_and_a_cancel_request_that_stays(db):
    claim = claimed_job(db)
    lease = Lease(db, claim, lease_seconds=5.0, interval=60.0)
    with db.write() as session:
        lease.renew(session, {"iteration": 7})
    assert not lease.should_stop()
    with db.write() as session:
        job_rows.request_cancel(session, session.get(Job, claim.job_id))
    with db.write() as session:
        lease.renew(session, {"iteration": 8})
    assert lease.cancel_requested and lease.should_stop() and not lease.lost
    with db.read() as session:
        assert session.get(Job, claim.job_id).iteration == 8


def test_renew_with_a_stale_token_writes_nothing_and_marks_the_lease_lost(db):
    claim = claimed_job(db)
    lease = Lease(db, claim, lease_seconds=5.0, interval=60.0)
    with db.write() as session:  # another attempt took the job over
        session.execute(update(Job).where(Job.id == claim.job_id)
                        .values(lease_token=claim.lease_token + 1))
    with pytest.raises(LeaseLost), db.write() as session:
        lease.renew(session, {"iteration": 99})
    assert lease.lost and lease.should_stop()
    with db.read() as session:
        assert session.get(Job, claim.job_id).iteration == 0


def test_the_renewal_thread_extends_the_lease_until_the_block_ends(db):
    claim = claimed_job(db, lease_seconds=5.0)
    first = expiry(db, claim.job_id)
    with Lease(db, claim, lease_seconds=5.0, interval=0.05):
        deadline = time.monotonic() + 10
        while expiry(db, claim.job_id) == first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.02)
    time.sleep(0.2)  # a renewal already under way when the block ended may still land
    ended = expiry(db, claim.job_id)
    time.sleep(0.3)
    assert expiry(db, claim.job_id) == ended, "renewed after the block ended"


def test_the_renewal_thread_notices_a_lost_lease_and_stops(db):
    claim = claimed_job(db)
    with Lease(db, claim, lease_seconds=5.0, interval=0.05) as lease:
        with db.write() as session:
            session.execute(update(Job).where(Job.id == claim.job_id)
                            .values(lease_token=claim.lease_token + 1))
        deadline = time.monotonic() + 10
        while not lease.lost:
            assert time.monotonic() < deadline, "the loss was never noticed"
            time.sleep(0.02)
        assert lease.should_stop() and not lease.cancel_requested
