"""Job rows: create, read, claim with a lease, renew, finish, release, reap expired leases.

Every function takes the caller's session and never commits: the caller owns the transaction.
Writes on behalf of a running attempt carry its lease token and change nothing when the token
is stale (fencing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from . import status_events
from .base import utcnow
from .models import Job, JobAttempt, Sweep
from .notifications import notify
from .statuses import ACTIVE, AttemptOutcome, JobStatus

# JobStatus members under short names, as this module and its callers spell them.
QUEUED, RUNNING, SUCCEEDED = JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED
FAILED, CANCELLED = JobStatus.FAILED, JobStatus.CANCELLED


@dataclass(frozen=True)
class WorkerIdentity:
    """Who claims jobs: a host, a process id and a worker id unique across restarts."""

    id: str
    host: str
    pid: int


@dataclass(frozen=True)
class Claim:
    """A successful claim: the job and the lease token that fences this attempt's writes."""

    job_id: str
    lease_token: int
    attempt: int


def create(session: Session, *, job_id: str, owner: str, name: str, spec: dict[str, Any],
           dataset_id: str | None, total_iterations: int) -> Job:
    """Add a queued job and flush it, so that its defaults (created_at, ...) are set."""
    job = Job(id=job_id, owner=owner, name=name, status=QUEUED, spec=spec,
              dataset_id=dataset_id, total_iterations=total_iterations, latest_metrics={})
    session.add(job)
    session.flush()
    status_events.record(session, [job_id])
    return job


def delete_job(session: Session, job_id: str) -> None:
    """Remove the job; its attempts, metrics, checkpoint and model go with it (ON DELETE
    CASCADE)."""
    session.execute(delete(Job).where(Job.id == job_id))


def database_clock(session: Session) -> ColumnElement[dt.datetime] | dt.datetime:
    """The time leases are measured by: the database server's clock on PostgreSQL, so that
    workers whose clocks disagree still agree on which lease expired; on SQLite, a file that
    only processes of one machine share, that machine's clock."""
    if session.get_bind().dialect.name == "postgresql":
        return func.now()
    return utcnow()


def lease_deadline(session: Session, seconds: float) -> ColumnElement[dt.datetime] | dt.datetime:
    """When a lease taken or renewed now ends, `seconds` from now by `database_clock`."""
    return database_clock(session) + dt.timedelta(seconds=seconds)


def get(session: Session, job_id: str, *, owner: str | None = None) -> Job | None:
    """The job, or None when it does not exist or (with `owner`) belongs to someone else."""
    job = session.get(Job, job_id)
    if job is None or (owner is not None and job.owner != owner):
        return None
    return job


def page(session: Session, *, owner: str | None, status: JobStatus | None,
         before: tuple[dt.datetime, str] | None, limit: int,
         sweep_id: str | None = None) -> list[Job]:
    """Jobs newest first; `before` is the (created_at, id) of the previous page's last job."""
    query = select(Job)
    if sweep_id is not None:
        query = query.where(Job.sweep_id == sweep_id)
    if owner is not None:
        query = query.where(Job.owner == owner)
    if status is not None:
        query = query.where(Job.status == status)
    if before is not None:
        created_at, job_id = before
        query = query.where(or_(Job.created_at < created_at,
                                and_(Job.created_at == created_at, Job.id < job_id)))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list(session.scalars(query))


_COUNT_ACTIVE = (select(func.count()).select_from(Job)
                 .where(Job.owner == bindparam("owner"), Job.status.in_(ACTIVE)))


def count_active(session: Session, owner: str) -> int:
    """Queued and running jobs of `owner`, counted in the (owner, status) index alone.

    Core on the session's connection: on the busiest write path (every submission) the ORM
    layer would cost more than the count itself."""
    return int(session.connection().scalar(_COUNT_ACTIVE, {"owner": owner}) or 0)


def counts_by_status(session: Session) -> dict[JobStatus, int]:
    """How many jobs have each status (every status present, 0 when none)."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
    counts = dict.fromkeys(JobStatus, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts


def running_speed(session: Session) -> float:
    """The running jobs' training speeds summed, in iterations per second."""
    total = session.scalar(select(func.coalesce(func.sum(Job.iterations_per_second), 0.0))
                           .where(Job.status == RUNNING))
    return float(total or 0)


def claim(session: Session, worker: WorkerIdentity, *, lease_seconds: float,
          job_id: str | None = None) -> Claim | None:
    """Atomically take the oldest queued job (or job `job_id` if it is queued) for `worker`.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so concurrent claimers take different rows.
    SQLite: the caller's write session began with BEGIN IMMEDIATE, which serialises claimers.
    The UPDATE re-checks the status either way. Returns None when there is nothing to take.
    """
    candidate = select(Job.id, Job.sweep_id).where(Job.status == QUEUED, _sweep_has_room())
    if job_id is not None:
        candidate = candidate.where(Job.id == job_id)
    candidate = candidate.order_by(Job.created_at, Job.id).limit(1).with_for_update(
        skip_locked=True)
    found = session.execute(candidate).one_or_none()
    if found is None:
        return None
    chosen, sweep_id = found
    if sweep_id is not None and not _lock_sweep_slot(session, sweep_id):
        return None
    now = utcnow()
    row = session.execute(
        update(Job)
        .where(Job.id == chosen, Job.status == QUEUED)
        .values(status=RUNNING, attempts=Job.attempts + 1, lease_token=Job.lease_token + 1,
                lease_expires_at=lease_deadline(session, lease_seconds),
                worker_host=worker.host, worker_pid=worker.pid,
                started_at=func.coalesce(Job.started_at, now), updated_at=now)
        .returning(Job.lease_token, Job.attempts, Job.checkpoint_iteration)
    ).one_or_none()
    if row is None:
        return None
    token, attempts, resumed_from = row
    session.add(JobAttempt(job_id=chosen, number=attempts, lease_token=token,
                           worker_host=worker.host, worker_pid=worker.pid, started_at=now,
                           resumed_from=resumed_from))
    status_events.record(session, [chosen])
    return Claim(job_id=chosen, lease_token=token, attempt=attempts)


def _sweep_has_room() -> ColumnElement[bool]:
    """True for a job outside any sweep, or in a sweep with fewer than max_concurrent runs
    running (a held-back run stays queued and is taken once a slot frees)."""
    running = aliased(Job)
    running_count = (select(func.count()).select_from(running)
                     .where(running.sweep_id == Sweep.id, running.status == RUNNING)
                     .scalar_subquery())
    full = exists().where(Sweep.id == Job.sweep_id, Sweep.max_concurrent.is_not(None),
                          running_count >= Sweep.max_concurrent)
    return or_(Job.sweep_id.is_(None), ~full)


def _lock_sweep_slot(session: Session, sweep_id: str) -> bool:
    """Lock the sweep row (PostgreSQL: FOR UPDATE, so concurrent claimers of one sweep's runs
    take turns; SQLite's write lock already serialises them) and recount its running runs
    under the lock: False when the sweep is already at max_concurrent."""
    limit = session.scalar(select(Sweep.max_concurrent).where(Sweep.id == sweep_id)
                           .with_for_update())
    if limit is None:
        return True
    running = session.scalar(select(func.count()).select_from(Job)
                             .where(Job.sweep_id == sweep_id, Job.status == RUNNING)) or 0
    return running < limit


def renew(session: Session, claim_: Claim, *, lease_seconds: float,
          progress: dict[str, Any]) -> bool | None:
    """Extend the lease and record progress. Returns whether cancellation was requested, or
    None when the lease is lost (the job was reclaimed, finished or deleted)."""
    now = utcnow()
    row = session.execute(
        update(Job)
        .where(Job.id == claim_.job_id, Job.lease_token == claim_.lease_token,
               Job.status == RUNNING)
        .values(lease_expires_at=lease_deadline(session, lease_seconds), updated_at=now,
                **progress)
        .returning(Job.cancel_requested)
    ).one_or_none()
    if row is None:
        return None
    notify(session, [claim_.job_id])  # progress and (in the writer's flush) new metric points
    return bool(row[0])


def finish(session: Session, claim_: Claim, *, status: JobStatus, error: str | None = None,
           **values: Any) -> bool:
    """Set a terminal status if the lease is still this attempt's; False when fenced off."""
    now = utcnow()
    result = cast(CursorResult[Any], session.execute(
        update(Job)
        .where(Job.id == claim_.job_id, Job.lease_token == claim_.lease_token,
               Job.status == RUNNING)
        .values(status=status, error=error, finished_at=now, updated_at=now,
                lease_expires_at=None, **values)
    ))
    if result.rowcount != 1:
        return False
    _end_attempt(session, claim_, AttemptOutcome(status), now)
    status_events.record(session, [claim_.job_id])
    return True


def release(session: Session, claim_: Claim) -> bool:
    """Give the job back to the queue (graceful shutdown); False when fenced off."""
    now = utcnow()
    result = cast(CursorResult[Any], session.execute(
        update(Job)
        .where(Job.id == claim_.job_id, Job.lease_token == claim_.lease_token,
               Job.status == RUNNING)
        .values(status=QUEUED, lease_expires_at=None, updated_at=now)
    ))
    if result.rowcount != 1:
        return False
    _end_attempt(session, claim_, AttemptOutcome.RELEASED, now)
    status_events.record(session, [claim_.job_id])
    return True


def reap_expired(session: Session, *, max_attempts: int,
                 now: dt.datetime | None = None) -> list[tuple[str, JobStatus]]:
    """Running jobs whose lease expired: back to queued, or failed once `max_attempts` attempts
    were lost. Returns (job_id, new status) pairs."""
    deadline = database_clock(session) if now is None else now
    now = now or utcnow()
    expired = and_(Job.status == RUNNING, Job.lease_expires_at < deadline)
    failed = session.execute(
        update(Job)
        .where(expired, Job.lost_attempts + 1 >= max_attempts)
        .values(status=FAILED, lost_attempts=Job.lost_attempts + 1, finished_at=now,
                updated_at=now, lease_expires_at=None,
                error=f"worker lost {max_attempts} times (max_attempts={max_attempts}): the job "
                      f"may be killing its worker, e.g. by running out of memory")
        .returning(Job.id, Job.lease_token)
    ).all()
    requeued = session.execute(
        update(Job)
        .where(expired)
        .values(status=QUEUED, lost_attempts=Job.lost_attempts + 1, updated_at=now,
                lease_expires_at=None)
        .returning(Job.id, Job.lease_token)
    ).all()
    for job_id, token in [*failed, *requeued]:
        session.execute(
            update(JobAttempt)
            .where(JobAttempt.job_id == job_id, JobAttempt.lease_token == token)
            .values(outcome=AttemptOutcome.LOST, ended_at=now))
    status_events.record(session, [job_id for job_id, _ in [*failed, *requeued]])
    return [(job_id, FAILED) for job_id, _ in failed] + \
        [(job_id, QUEUED) for job_id, _ in requeued]


def expire_worker(session: Session, *, host: str, pid: int) -> int:
    """Expire the leases a dead worker process held, so the next reap requeues its jobs."""
    result = cast(CursorResult[Any], session.execute(
        update(Job)
        .where(Job.status == RUNNING, Job.worker_host == host, Job.worker_pid == pid)
        .values(lease_expires_at=lease_deadline(session, -1.0))))
    return result.rowcount


def request_cancel(session: Session, job: Job) -> None:
    """Queued jobs end cancelled now; running ones stop at their next heartbeat."""
    now = utcnow()
    if job.status == QUEUED:
        job.status = CANCELLED
        job.finished_at = now
        job.updated_at = now
        status_events.record(session, [job.id])
    elif job.status == RUNNING:
        job.cancel_requested = True
        job.updated_at = now


def change_marks(session: Session, job_ids: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """{job id: (updated_at, status, iteration)} of the existing jobs among `job_ids`, by
    primary key: every write of a job (status, progress, a metric flush) changes its mark."""
    rows = session.execute(select(Job.id, Job.updated_at, Job.status, Job.iteration)
                           .where(Job.id.in_(sorted(set(job_ids)))))
    return {job_id: tuple(mark) for job_id, *mark in rows}


def set_checkpoint_iteration(session: Session, job_id: str, iteration: int) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(checkpoint_iteration=iteration))


def queued_ids(session: Session, limit: int = 1000) -> list[str]:
    """The oldest claimable queued jobs' ids, oldest first (runs held back by their sweep's
    max_concurrent are left out: a doorbell rung for one would claim nothing)."""
    query = (select(Job.id).where(Job.status == QUEUED, _sweep_has_room())
             .order_by(Job.created_at, Job.id)
             .limit(limit))
    return list(session.scalars(query))


def count_queued(session: Session) -> int:
    """How many queued jobs could be claimed now (not counting runs held back by their
    sweep's max_concurrent)."""
    return int(session.scalar(select(func.count()).select_from(Job)
                              .where(Job.status == QUEUED, _sweep_has_room())) or 0)


def attempts(session: Session, job_id: str) -> list[JobAttempt]:
    query = select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)
    return list(session.scalars(query))


def _end_attempt(session: Session, claim_: Claim, outcome: AttemptOutcome,
                 now: dt.datetime) -> None:
    session.execute(
        update(JobAttempt)
        .where(JobAttempt.job_id == claim_.job_id, JobAttempt.lease_token == claim_.lease_token)
        .values(outcome=outcome, ended_at=now))
