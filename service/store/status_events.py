"""Job status events: every status change of a job, appended in the transaction that made it.

`record` copies the job row's status, attempts, error and iteration into the next `seq` of
that job (1, 2, ...). Status changes of one job are serialised by the job row (the UPDATE
that changed it locks it until commit), so a job's seq numbers are gapless and in commit order.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from .base import utcnow
from .models import Job, JobStatusEvent
from .notifications import notify
from .statuses import JobStatus


@dataclass(frozen=True)
class StatusEvent:
    job_id: str
    seq: int
    status: JobStatus
    attempts: int
    error: str | None
    iteration: int


def record(session: Session, job_ids: Iterable[str]) -> None:
    """Append each job's current status as its next status event, and notify listeners."""
    ids = sorted(set(job_ids))
    if not ids:
        return
    session.flush()  # ORM changes (a cancelled queued job) reach the row first
    previous = (select(func.coalesce(func.max(JobStatusEvent.seq), 0))
                .where(JobStatusEvent.job_id == Job.id).scalar_subquery())
    session.execute(insert(JobStatusEvent).from_select(
        ["job_id", "seq", "status", "attempts", "error", "iteration", "created_at"],
        select(Job.id, previous + 1, Job.status, Job.attempts, Job.error, Job.iteration,
               literal(utcnow(), JobStatusEvent.created_at.type))
        .where(Job.id.in_(ids))))
    notify(session, ids)


def after(session: Session, job_ids: Iterable[str], seq: dict[str, int]) -> list[StatusEvent]:
    """The status events of `job_ids` after `seq[job_id]` (0 when absent): each job's in seq
    order, different jobs' interleaved by when they were recorded (clocks of different
    machines may disagree: a job's own order never depends on them)."""
    ids = sorted(set(job_ids))
    if not ids:
        return []
    rows = session.execute(
        select(JobStatusEvent.job_id, JobStatusEvent.seq, JobStatusEvent.status,
               JobStatusEvent.attempts, JobStatusEvent.error, JobStatusEvent.iteration,
               JobStatusEvent.created_at)
        .where(JobStatusEvent.job_id.in_(ids))
        .order_by(JobStatusEvent.job_id, JobStatusEvent.seq))
    per_job: dict[str, list[tuple[dt.datetime, StatusEvent]]] = {}
    for job_id, number, status, attempts, error, iteration, created_at in rows:
        event = StatusEvent(job_id, number, status, attempts, error, iteration)
        if event.seq > seq.get(event.job_id, 0):
            per_job.setdefault(event.job_id, []).append((created_at, event))
    return [event for _, event in heapq.merge(*per_job.values(), key=lambda pair: pair[0])]


def last_seq(session: Session, job_ids: Iterable[str]) -> dict[str, int]:
    """{job id: its last status event's seq} (0 for a job without any)."""
    ids = sorted(set(job_ids))
    found = dict(session.execute(
        select(JobStatusEvent.job_id, func.max(JobStatusEvent.seq))
        .where(JobStatusEvent.job_id.in_(ids)).group_by(JobStatusEvent.job_id)).all())
    return {job_id: int(found.get(job_id) or 0) for job_id in ids}
