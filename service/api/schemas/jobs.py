"""Job resources: JobPublic, JobsPublic, AttemptPublic."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from service.jobs.progress import eta_seconds
from service.store.models import Job, JobAttempt
from service.store.statuses import AttemptOutcome, JobStatus


class Progress(BaseModel):
    iteration: int
    total: int
    iterations_per_second: float | None
    eta_seconds: float | None


class WorkerInfo(BaseModel):
    host: str
    pid: int


class JobPublic(BaseModel):
    id: str
    name: str
    status: JobStatus
    spec: dict[str, Any]
    progress: Progress
    attempts: int
    worker: WorkerInfo | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    metrics: dict[str, float]
    cancel_requested: bool
    checkpoint_iteration: int | None
    sweep_id: str | None = None

    @classmethod
    def from_row(cls, job: Job) -> JobPublic:
        speed = job.iterations_per_second if job.status == JobStatus.RUNNING else None
        eta = eta_seconds(job.total_iterations, job.iteration, speed)
        worker = (WorkerInfo(host=job.worker_host, pid=job.worker_pid)
                  if job.worker_host is not None and job.worker_pid is not None else None)
        return cls(
            id=job.id, name=job.name, status=job.status, spec=job.spec,
            progress=Progress(iteration=job.iteration, total=job.total_iterations,
                              iterations_per_second=speed, eta_seconds=eta),
            attempts=job.attempts, worker=worker, created_at=job.created_at,
            started_at=job.started_at, finished_at=job.finished_at, error=job.error,
            metrics=dict(job.latest_metrics or {}), cancel_requested=job.cancel_requested,
            checkpoint_iteration=job.checkpoint_iteration, sweep_id=job.sweep_id,
        )


class JobsPublic(BaseModel):
    data: list[JobPublic]
    next_cursor: str | None


class AttemptPublic(BaseModel):
    number: int
    worker: WorkerInfo
    started_at: dt.datetime
    ended_at: dt.datetime | None
    outcome: AttemptOutcome
    resumed_from_iteration: int | None

    @classmethod
    def from_row(cls, attempt: JobAttempt) -> AttemptPublic:
        return cls(number=attempt.number,
                   worker=WorkerInfo(host=attempt.worker_host, pid=attempt.worker_pid),
                   started_at=attempt.started_at, ended_at=attempt.ended_at,
                   outcome=attempt.outcome,
                   resumed_from_iteration=attempt.resumed_from)


class AttemptsPublic(BaseModel):
    data: list[AttemptPublic]
