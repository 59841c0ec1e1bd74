"""Doorbells lost with the broker are rung again from the jobs table (real Redis, both
databases)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from celery import Celery
from sqlalchemy.engine import make_url

from service.config import Settings
from service.workers import doorbells
from service.workers.celery_app import QUEUE, make_celery
from tests.conftest import REDIS_URL, require_service
from tests.factories import add_queued_job

pytestmark = pytest.mark.redis

# Its own Redis database: the end-to-end Celery tests flush theirs.
BROKER_URL = make_url(REDIS_URL).set(database="13").render_as_string(hide_password=False)


@pytest.fixture
def broker() -> Iterator[tuple[Celery, object]]:
    require_service("Redis", REDIS_URL, 6379)
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield make_celery(Settings(broker_url=BROKER_URL, _env_file=None)), client
    client.flushdb()
    client.close()


def queue_jobs(db, count: int) -> list[str]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with db.write() as session:
        return [add_queued_job(session, created_at=start + dt.timedelta(seconds=n)).id
                for n in range(count)]


def test_every_queued_job_without_a_doorbell_is_rung_once(db, broker):
    app, client = broker
    ids = queue_jobs(db, 3)
    assert doorbells.waiting(app) == 0
    assert doorbells.ring_missing(db, app) == ids  # oldest first
    assert doorbells.waiting(app) == 3 == client.llen(QUEUE)
    assert doorbells.ring_missing(db, app) == [], "a full queue gets no more doorbells"
    assert doorbells.waiting(app) == 3


def test_only_the_missing_doorbells_are_rung(db, broker):
    app, client = broker
    ids = queue_jobs(db, 4)
    doorbells.ring_missing(db, app)
    client.lpop(QUEUE)  # a consumer took one and lost it (its claim failed, the task was acked)
    client.lpop(QUEUE)
    assert doorbells.ring_missing(db, app) == ids[:2]
    assert doorbells.waiting(app) == 4


def test_a_broker_restart_without_persistence_loses_every_doorbell_and_all_are_rung(db, broker):
    app, client = broker
    ids = queue_jobs(db, 5)
    doorbells.ring_missing(db, app)
    client.flushdb()
    assert doorbells.waiting(app) == 0
    assert doorbells.ring_missing(db, app) == ids


def test_a_pass_rings_at_most_its_limit(db, broker):
    app, _ = broker
    ids = queue_jobs(db, 5)
    assert doorbells.ring_missing(db, app, limit=2) == ids[:2]
    assert doorbells.ring_missing(db, app, limit=2) == ids[:2]
    assert doorbells.waiting(app) == 4
    assert doorbells.ring_missing(db, app, limit=2) == ids[:1]
    assert doorbells.waiting(app) == 5


def test_finished_and_running_jobs_get_no_doorbell(db, broker):
    app, _ = broker
    ids = queue_jobs(db, 3)
    with db.write() as session:
        from service.store.models import Job

        session.get(Job, ids[0]).status = "succeeded"
        session.get(Job, ids[1]).status = "running"
    assert doorbells.ring_missing(db, app) == ids[2:]
