"""service.store.workers on SQLite and PostgreSQL: the rows of live workers."""

from __future__ import annotations

import datetime as dt

from service.store import workers as worker_rows
from service.store.base import utcnow
from service.store.jobs import WorkerIdentity
from service.store.models import WorkerRecord
from service.store.session import Database

LIVE = WorkerIdentity(id="h1:10:aaaa", host="h1", pid=10)
SILENT = WorkerIdentity(id="h0:20:bbbb", host="h0", pid=20)


def test_touch_adds_a_worker_then_updates_when_it_was_seen(db: Database) -> None:
    with db.write() as session:
        worker_rows.touch(session, LIVE, kind="local")
    with db.read() as session:
        first = session.get(WorkerRecord, LIVE.id)
        assert (first.kind, first.host, first.pid, first.current_job_id) == ("local", "h1", 10,
                                                                              None)
    with db.write() as session:
        worker_rows.touch(session, LIVE, kind="local", current_job_id="job-1")
    with db.read() as session:
        again = session.get(WorkerRecord, LIVE.id)
        assert again.current_job_id == "job-1" and again.started_at == first.started_at
        assert again.last_seen_at >= first.last_seen_at


def test_silent_workers_are_not_seen_and_are_forgotten(db: Database) -> None:
    with db.write() as session:
        worker_rows.touch(session, LIVE, kind="celery")
        worker_rows.touch(session, SILENT, kind="local")
        session.get(WorkerRecord, SILENT.id).last_seen_at = utcnow() - dt.timedelta(minutes=5)
    with db.read() as session:
        assert [w.id for w in worker_rows.seen_since(session, 60)] == [LIVE.id]
        assert [w.id for w in worker_rows.seen_since(session, 600)] == [SILENT.id, LIVE.id]
    with db.write() as session:
        assert worker_rows.forget_silent(session, 60) == 1
    with db.write() as session:
        worker_rows.forget(session, LIVE)
    with db.read() as session:
        assert worker_rows.seen_since(session, 600) == []
