"""max_concurrent in the claim: a sweep's runs beyond k stay queued and are not counted as
claimable (so the doorbell reconciler does not ring for them) until a slot frees."""

from __future__ import annotations

from service.store import jobs as job_rows
from service.store import sweeps as sweep_rows
from service.store.models import Job
from service.store.session import Database
from tests.factories import add_queued_job

WORKER = job_rows.WorkerIdentity(id="w", host="h", pid=1)


def add_sweep(db: Database, runs: int, max_concurrent: int | None) -> list[str]:
    with db.write() as session:
        sweep_rows.add(session, sweep_id="s" * 32, owner="", name="s", spec={},
                       run_parameters={}, max_concurrent=max_concurrent)
        ids = []
        for _ in range(runs):
            job = add_queued_job(session)
            job.sweep_id = "s" * 32
            ids.append(job.id)
    return ids


def claim(db: Database, job_id: str | None = None) -> job_rows.Claim | None:
    with db.write() as session:
        return job_rows.claim(session, WORKER, lease_seconds=60, job_id=job_id)


def test_no_more_than_max_concurrent_runs_are_claimed(db: Database) -> None:
    ids = add_sweep(db, runs=3, max_concurrent=2)
    first, second = claim(db), claim(db)
    assert first is not None and second is not None
    assert claim(db) is None
    assert claim(db, job_id=ids[2]) is None  # its doorbell claims nothing
    with db.read() as session:
        assert job_rows.count_queued(session) == 0
        assert job_rows.queued_ids(session) == []
        assert session.get(Job, ids[2]).status == job_rows.QUEUED
    with db.write() as session:
        assert job_rows.finish(session, first, status=job_rows.SUCCEEDED)
    with db.read() as session:
        assert job_rows.queued_ids(session) == [ids[2]]
    third = claim(db)
    assert third is not None and third.job_id == ids[2]


def test_a_held_back_run_does_not_block_other_jobs(db: Database) -> None:
    add_sweep(db, runs=2, max_concurrent=1)
    with db.write() as session:
        other = add_queued_job(session).id
    assert claim(db) is not None
    taken = claim(db)
    assert taken is not None and taken.job_id == other


def test_a_sweep_without_a_limit_runs_everything(db: Database) -> None:
    add_sweep(db, runs=3, max_concurrent=None)
    assert all(claim(db) is not None for _ in range(3))
