"""What changed in a job after a position: one read that the hub fans out, and that a stream
also makes alone for its backlog (or when it fell behind the hub)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from service.jobs.progress import eta_seconds
from service.store import jobs as job_rows
from service.store import metrics as metric_rows
from service.store import status_events
from service.store.metrics import KeyedPoint
from service.store.status_events import StatusEvent
from service.store.statuses import JobStatus


@dataclass(frozen=True)
class Position:
    """How far a reader has read a job: status events up to `status`, metric steps up to
    `step`."""

    status: int = 0
    step: int = 0


@dataclass(frozen=True)
class JobSnapshot:
    """The job row as the reader saw it (before it read the events and points)."""

    status: JobStatus
    attempts: int
    error: str | None
    iteration: int
    total: int
    iterations_per_second: float | None
    latest_metrics: dict[str, float]

    @property
    def progress(self) -> dict[str, Any]:
        """The `progress` event's data."""
        speed = self.iterations_per_second if self.status == JobStatus.RUNNING else None
        return {"iteration": self.iteration, "total": self.total,
                "iterations_per_second": speed,
                "eta_seconds": eta_seconds(self.total, self.iteration, speed)}


@dataclass(frozen=True)
class JobChange:
    """Everything of job `job_id` after `after`: its status events, its metric points (when
    asked for; `complete` is False when more points follow), and its row. `snapshot` is None
    once the job no longer exists."""

    job_id: str
    after: Position
    snapshot: JobSnapshot | None
    statuses: list[StatusEvent] = field(default_factory=list)
    points: list[KeyedPoint] = field(default_factory=list)
    complete: bool = True

    @property
    def position(self) -> Position:
        """Where a reader is once it has read this change."""
        return Position(self.statuses[-1].seq if self.statuses else self.after.status,
                        self.points[-1].step if self.points else self.after.step)


def read_change(session: Session, job_id: str, after: Position, *, points: bool,
                max_points: int) -> JobChange:
    """The job's row, then its status events and (with `points`) up to `max_points` metric
    points after `after`. The row is read first: when it shows a terminal status, every point
    and status event of the job was committed before, so the reads after it see them all."""
    job = job_rows.get(session, job_id)
    if job is None:
        return JobChange(job_id, after, None)
    snapshot = JobSnapshot(job.status, job.attempts, job.error, job.iteration,
                           job.total_iterations, job.iterations_per_second,
                           dict(job.latest_metrics or {}))
    statuses = status_events.after(session, [job_id], {job_id: after.status})
    found: list[KeyedPoint] = []
    complete = True
    if points:
        found, complete = metric_rows.points_after(session, job_id, after.step,
                                                   limit=max_points)
    return JobChange(job_id, after, snapshot, statuses, found, complete)


def heads(session: Session, job_ids: list[str], *, points: bool) -> dict[str, Position]:
    """Each job's current end: its last status seq and (with `points`) its last metric step."""
    last = status_events.last_seq(session, job_ids)
    return {job_id: Position(last[job_id], metric_rows.last_step(session, job_id) if points
                             else 0) for job_id in job_ids}
