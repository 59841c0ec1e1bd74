"""The outbox: a delivery row exists exactly when the status change it reports committed, for
each place a job ends (runner, cancel, reaper, a sweep's cancel), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from service.config import Settings
from service.jobs import lifecycle
from service.store import jobs as job_rows
from service.store.models import Job, WebhookDelivery
from service.store.session import Database
from service.webhooks import deliveries
from service.workers import reaper
from tests.factories import add_queued_job, spec

WORKER = job_rows.WorkerIdentity(id="w1", host="host-a", pid=101)
URL = "https://hooks.example.com/dropnet"


def queued(db: Database, events: list[str] | None = None) -> str:
    notify = {"url": URL} if events is None else {"url": URL, "events": events}
    with db.write() as session:
        return add_queued_job(session, owner="alice",
                              spec_={**spec(iterations=20), "notify": notify}).id


def event_types(db: Database, job_id: str) -> list[str]:
    with db.read() as session:
        job = job_rows.get(session, job_id)
        assert job is not None
        return [delivery.event_type for delivery, _ in deliveries.of_job(session, job)]


def test_cancelling_a_queued_job_writes_its_delivery(db: Database) -> None:
    job_id = queued(db)
    with db.write() as session:
        lifecycle.cancel(session, session.get(Job, job_id))
    assert event_types(db, job_id) == ["job.cancelled"]
    with db.read() as session:
        [delivery] = session.query(WebhookDelivery).all()
        body = json.loads(delivery.body)
    assert body["type"] == "job.cancelled" and body["data"]["job_id"] == job_id
    assert delivery.url == URL and delivery.owner == "alice"


def test_a_rolled_back_status_change_leaves_no_delivery(db: Database) -> None:
    job_id = queued(db)
    with pytest.raises(RuntimeError), db.write() as session:
        lifecycle.cancel(session, session.get(Job, job_id))
        raise RuntimeError("the request failed before its commit")
    assert event_types(db, job_id) == []
    with db.read() as session:
        assert session.get(Job, job_id).status == "queued"


def test_requesting_cancel_of_a_running_job_writes_nothing_until_it_stops(
        db: Database) -> None:
    job_id = queued(db)
    with db.write() as session:
        job_rows.claim(session, WORKER, lease_seconds=30, job_id=job_id)
    with db.write() as session:
        lifecycle.cancel(session, session.get(Job, job_id))
    assert event_types(db, job_id) == []


def test_the_reaper_failing_a_lost_job_writes_its_delivery(db: Database,
                                                           settings: Settings) -> None:
    job_id = queued(db, events=["failed"])
    with db.write() as session:
        job_rows.claim(session, WORKER, lease_seconds=30, job_id=job_id)
        job_rows.expire_worker(session, host=WORKER.host, pid=WORKER.pid)
    changed = reaper.reap(db, settings.model_copy(update={"max_attempts": 1}), lambda _: None)
    assert changed == [(job_id, job_rows.FAILED)]
    assert event_types(db, job_id) == ["job.failed"]


def test_a_requeued_job_writes_nothing(db: Database, settings: Settings) -> None:
    job_id = queued(db)
    with db.write() as session:
        job_rows.claim(session, WORKER, lease_seconds=30, job_id=job_id)
        job_rows.expire_worker(session, host=WORKER.host, pid=WORKER.pid)
    assert reaper.reap(db, settings, lambda _: None) == [(job_id, job_rows.QUEUED)]
    assert event_types(db, job_id) == []


def test_an_event_not_asked_for_writes_nothing(db: Database) -> None:
    job_id = queued(db, events=["succeeded", "failed"])
    with db.write() as session:
        lifecycle.cancel(session, session.get(Job, job_id))
    assert event_types(db, job_id) == []


def test_deleting_a_job_deletes_its_deliveries(db: Database) -> None:
    job_id = queued(db)
    with db.write() as session:
        job = session.get(Job, job_id)
        lifecycle.cancel(session, job)
    with db.write() as session:
        lifecycle.delete(session, session.get(Job, job_id))
    with db.read() as session:
        assert session.query(WebhookDelivery).count() == 0
