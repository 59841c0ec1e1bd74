"""Doorbells lost with the broker are rung again from the jobs table.

A Celery message is only a doorbell: the jobs table says what is queued. Doorbells get lost:
a consumer takes one while the database is down, its claim fails and the message is acked;
Redis restarts without persistence and drops every waiting message; the API commits a job
while the broker is unreachable. `ring_missing` compares the queued jobs with the messages
waiting in the broker queue and rings once for each job that has none to wait for. Every
maintenance pass of the API's Celery executor and of `dropnet worker` runs it, so a lost
doorbell is rung again within `poll_seconds` of the broker answering.

A consumer whose own job is no longer queued claims the oldest queued job instead (see
`JobRunner.run(..., or_oldest=True)`), so it does not matter which job's id a new doorbell
carries, only that there are as many doorbells as queued jobs.
"""

from __future__ import annotations

import logging

from celery import Celery

from service.store import jobs as job_rows
from service.store.session import Database

from .celery_app import QUEUE, enqueue

log = logging.getLogger(__name__)

RING_LIMIT = 1000
"""At most this many doorbells per pass: a backlog larger than that is topped up over passes."""


def waiting(app: Celery) -> int:
    """Messages waiting in the broker's dropnet queue (not counting those a consumer holds)."""
    with app.connection_for_read() as connection:
        return int(connection.default_channel.queue_declare(queue=QUEUE).message_count)


def ring_missing(db: Database, app: Celery, *, limit: int = RING_LIMIT) -> list[str]:
    """Ring for queued jobs beyond the doorbells the broker holds; the ids rung for.

    Raises whatever the broker or the database raise: the caller's loop retries next pass.
    """
    with db.read() as session:
        queued = job_rows.count_queued(session)
    missing = min(queued - waiting(app), limit)
    if missing <= 0:
        return []
    with db.read() as session:
        ids = job_rows.queued_ids(session, limit=missing)
    for job_id in ids:
        enqueue(app, job_id)
    log.warning("rang again for %d queued job(s) whose doorbells were lost", len(ids))
    return ids
