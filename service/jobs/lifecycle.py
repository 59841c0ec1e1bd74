"""Reading, cancelling and deleting jobs on behalf of their owner."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.errors import Conflict, NotFound
from service.store import jobs as job_rows
from service.store.models import Job
from service.store.statuses import TERMINAL
from service.webhooks import outbox


def get_owned(session: Session, job_id: str, owner: str) -> Job:
    """The job, or NotFound (also when it is someone else's: ids are not confirmed)."""
    job = job_rows.get(session, job_id, owner=owner)
    if job is None:
        raise NotFound(f"no job with id {job_id!r}")
    return job


def cancel(session: Session, job: Job) -> None:
    """Queued: cancelled now. Running: stops at its next heartbeat, keeping its metrics."""
    if job.status in TERMINAL:
        raise Conflict(f"job {job.id} already {job.status}; only queued or running jobs can be "
                       "cancelled")
    job_rows.request_cancel(session, job)
    outbox.record_job_end(session, job)


def delete(session: Session, job: Job) -> None:
    """Remove a finished job with its metrics, checkpoint and model."""
    if job.status not in TERMINAL:
        raise Conflict(f"job {job.id} is {job.status}; cancel it and wait until it has stopped "
                       "before deleting it")
    job_rows.delete_job(session, job.id)
