import datetime as dt
import threading

import pytest

from service.store import jobs as job_rows
from service.store.base import utcnow
from service.store.models import Job, JobAttempt
from tests.factories import add_queued_job

WORKER = job_rows.WorkerIdentity(id="w1", host="host-a", pid=101)
OTHER = job_rows.WorkerIdentity(id="w2", host="host-b", pid=202)


def claim(db, worker=WORKER, **kwargs):
    with db.write() as session:
        return job_rows.claim(session, worker, lease_seconds=kwargs.pop("lease", 30), **kwargs)


def test_claim_takes_the_oldest_queued_job_and_records_the_worker(db):
    base = utcnow()
    with db.write() as session:
        newer = add_queued_job(session, created_at=base)
        older = add_queued_job(session, created_at=base - dt.timedelta(seconds=5))
    first = claim(db)
    assert first.job_id == older.id and first.attempt == 1 and first.lease_token == 1
    with db.read() as session:
        job = session.get(Job, older.id)
        assert job.status == "running" and job.worker_host == "host-a" and job.worker_pid == 101
        assert job.started_at is not None and job.lease_expires_at > utcnow()
        [attempt] = session.query(JobAttempt).filter_by(job_id=older.id).all()
        assert (attempt.number, attempt.outcome, attempt.worker_pid) == (1, "running", 101)
    assert claim(db, OTHER).job_id == newer.id
    assert claim(db) is None


def test_claim_by_id_is_a_no_op_unless_queued(db):
    with db.write() as session:
        job = add_queued_job(session)
    assert claim(db, job_id=job.id) is not None
    assert claim(db, OTHER, job_id=job.id) is None  # a duplicate delivery


def test_concurrent_claimers_take_each_job_exactly_once(db):
    with db.write() as session:
        ids = {add_queued_job(session).id for _ in range(100)}
    claimed: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def claimer(n: int) -> None:
        worker = job_rows.WorkerIdentity(id=f"w{n}", host="h", pid=n)
        try:
            start.wait()
            while (result := claim(db, worker)) is not None:
                with lock:
                    claimed.append(result.job_id)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(claimed) == sorted(ids)  # all claimed, none twice
    with db.read() as session:
        assert {j.attempts for j in session.query(Job)} == {1}


def test_renew_finish_and_release_are_fenced_by_the_lease_token(db):
    with db.write() as session:
        job = add_queued_job(session)
    stale = claim(db, lease=0.01)
    with db.write() as session:
        assert job_rows.reap_expired(session, max_attempts=5,
                                     now=utcnow() + dt.timedelta(seconds=1)) == [
            (job.id, "queued")]
    fresh = claim(db, OTHER)
    assert fresh.lease_token == stale.lease_token + 1
    with db.write() as session:
        assert job_rows.renew(session, stale, lease_seconds=30, progress={}) is None
        assert not job_rows.finish(session, stale, status="succeeded")
        assert not job_rows.release(session, stale)
        assert job_rows.renew(session, fresh, lease_seconds=30, progress={}) is False
        assert job_rows.finish(session, fresh, status="succeeded")
    with db.read() as session:
        row = session.get(Job, job.id)
        assert row.status == "succeeded" and row.attempts == 2 and row.lost_attempts == 1
        outcomes = [a.outcome for a in job_rows.attempts(session, job.id)]
        assert outcomes == ["lost", "succeeded"]


def test_reaper_fails_a_job_after_max_attempts_lost(db):
    with db.write() as session:
        job = add_queued_job(session)
    for attempt in range(1, 4):
        assert claim(db, lease=0.01) is not None
        with db.write() as session:
            changed = job_rows.reap_expired(session, max_attempts=3,
                                            now=utcnow() + dt.timedelta(seconds=1))
        assert changed == [(job.id, "failed" if attempt == 3 else "queued")]
    with db.read() as session:
        row = session.get(Job, job.id)
        assert row.status == "failed" and row.finished_at is not None
        assert "max_attempts=3" in row.error
    assert claim(db) is None


def test_reaper_leaves_live_leases_alone(db):
    with db.write() as session:
        add_queued_job(session)
    claim(db, lease=60)
    with db.write() as session:
        assert job_rows.reap_expired(session, max_attempts=5) == []


def test_release_puts_the_job_back_without_counting_a_loss(db):
    with db.write() as session:
        job = add_queued_job(session)
    held = claim(db)
    with db.write() as session:
        assert job_rows.release(session, held)
    again = claim(db, OTHER)
    assert again.job_id == job.id and again.attempt == 2
    with db.read() as session:
        assert session.get(Job, job.id).lost_attempts == 0


def test_expire_worker_requeues_a_dead_processes_jobs_at_once(db):
    with db.write() as session:
        job = add_queued_job(session)
    claim(db, lease=3600)
    with db.write() as session:
        assert job_rows.expire_worker(session, host="host-a", pid=101) == 1
        assert job_rows.reap_expired(session, max_attempts=5) == [(job.id, "queued")]


@pytest.mark.parametrize(("status", "expected"), [("queued", "cancelled"),
                                                  ("running", "running")])
def test_cancel(db, status, expected):
    with db.write() as session:
        job = add_queued_job(session)
    if status == "running":
        claim(db)
    with db.write() as session:
        row = session.get(Job, job.id)
        job_rows.request_cancel(session, row)
    with db.read() as session:
        row = session.get(Job, job.id)
        assert row.status == expected
        assert row.cancel_requested is (status == "running")


def test_pages_are_newest_first_and_filter_by_owner_and_status(db):
    base = utcnow()
    with db.write() as session:
        made = [add_queued_job(session, owner="ann", created_at=base + dt.timedelta(seconds=i))
                for i in range(5)]
        add_queued_job(session, owner="bob")
    with db.read() as session:
        first = job_rows.page(session, owner="ann", status=None, before=None, limit=3)
        assert [j.id for j in first] == [j.id for j in reversed(made)][:3]
        rest = job_rows.page(session, owner="ann", status="queued",
                             before=(first[-1].created_at, first[-1].id), limit=3)
        assert [j.id for j in rest] == [made[1].id, made[0].id]
        assert job_rows.page(session, owner="ann", status="running", before=None, limit=3) == []
        assert job_rows.count_active(session, "ann") == 5


def test_create_adds_a_queued_job_with_its_defaults(db):
    with db.write() as session:
        job = job_rows.create(session, job_id="j1", owner="ann", name="n", spec={"a": 1},
                              dataset_id=None, total_iterations=7)
        assert job.created_at is not None  # flushed: the defaults are set
    with db.read() as session:
        row = job_rows.get(session, "j1", owner="ann")
        assert (row.status, row.name, row.spec, row.total_iterations) == ("queued", "n",
                                                                          {"a": 1}, 7)
        assert (row.iteration, row.attempts, row.latest_metrics) == (0, 0, {})
        assert job_rows.get(session, "j1", owner="bob") is None


def test_delete_job_removes_its_attempts_checkpoint_and_model(db):
    from service.store import artifacts

    with db.write() as session:
        doomed, kept = add_queued_job(session).id, add_queued_job(session).id
    claim(db, job_id=doomed)
    with db.write() as session:
        artifacts.put_checkpoint(session, doomed, 3, b"state")
        artifacts.add_model(session, doomed, b"model")
    with db.write() as session:
        job_rows.delete_job(session, doomed)
    with db.read() as session:
        assert job_rows.get(session, doomed) is None and job_rows.attempts(session, doomed) == []
        assert artifacts.get_checkpoint(session, doomed) is None
        assert artifacts.get_model(session, doomed) is None
        assert job_rows.get(session, kept) is not None


def test_running_speed_sums_the_running_jobs_only(db):
    with db.read() as session:
        assert job_rows.running_speed(session) == 0.0
    with db.write() as session:
        for _ in range(3):
            add_queued_job(session)
    first, second = claim(db), claim(db)
    with db.write() as session:
        for claimed, speed in ((first, 12.5), (second, 30.0)):
            job_rows.renew(session, claimed, lease_seconds=30,
                           progress={"iterations_per_second": speed})
        queued = job_rows.page(session, owner=None, status="queued", before=None, limit=1)[0]
        queued.iterations_per_second = 100.0  # not running: not counted
    with db.read() as session:
        assert job_rows.running_speed(session) == 42.5
