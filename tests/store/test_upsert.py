"""service.store.upsert on SQLite and PostgreSQL: insert, update on conflict, or skip."""

from __future__ import annotations

from sqlalchemy import select

from service.store.models import Checkpoint, MetricSeries
from service.store.session import Database
from service.store.upsert import upsert
from tests.factories import add_queued_job


def test_a_conflicting_row_updates_only_the_named_columns(db: Database) -> None:
    with db.write() as session:
        job_id = add_queued_job(session).id
        upsert(session, Checkpoint, [{"job_id": job_id, "iteration": 5, "data": b"first"}],
               conflict=("job_id",), update=("iteration", "data"))
    with db.read() as session:
        created_at = session.get(Checkpoint, job_id).created_at
    with db.write() as session:
        upsert(session, Checkpoint, [{"job_id": job_id, "iteration": 9, "data": b"second"}],
               conflict=("job_id",), update=("iteration", "data"))
    with db.read() as session:
        [row] = session.scalars(select(Checkpoint)).all()
        assert (row.job_id, row.iteration, row.data) == (job_id, 9, b"second")
        assert row.created_at == created_at  # not among the updated columns


def test_without_update_columns_a_conflicting_row_is_skipped(db: Database) -> None:
    with db.write() as session:
        job_id = add_queued_job(session).id
        upsert(session, MetricSeries, [{"job_id": job_id, "key": "loss"}],
               conflict=("job_id", "key"))
    with db.read() as session:
        first = session.scalar(select(MetricSeries.id).where(MetricSeries.key == "loss"))
    with db.write() as session:
        upsert(session, MetricSeries, [{"job_id": job_id, "key": "loss"},
                                       {"job_id": job_id, "key": "accuracy"}],
               conflict=("job_id", "key"))
        upsert(session, MetricSeries, [], conflict=("job_id", "key"))
    with db.read() as session:
        rows = dict(session.execute(select(MetricSeries.key, MetricSeries.id)).all())
    assert set(rows) == {"loss", "accuracy"} and rows["loss"] == first
