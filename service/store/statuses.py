"""The statuses a job and an attempt go through: one list each, shared by the columns, the API
schemas and the job runner. The stored strings are the members' values."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """queued -> running -> succeeded | failed | cancelled (running -> queued again when its
    worker is lost or shuts down)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def sweep_status(counts: dict[str, int]) -> JobStatus:
    """A sweep's status from {run status: number of runs}: running while any run is running,
    queued while any is queued; once all have ended, cancelled when any run was cancelled,
    failed when any failed, succeeded otherwise."""
    if any(counts.get(status) for status in ACTIVE):
        return JobStatus.RUNNING if counts.get(JobStatus.RUNNING) else JobStatus.QUEUED
    if counts.get(JobStatus.CANCELLED):
        return JobStatus.CANCELLED
    if counts.get(JobStatus.FAILED):
        return JobStatus.FAILED
    return JobStatus.SUCCEEDED


class AttemptOutcome(StrEnum):
    """How one claim of a job ended: running while it lasts, then the job's terminal status,
    released (given back at shutdown) or lost (its lease expired)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"
    LOST = "lost"


class DeliveryStatus(StrEnum):
    """A webhook delivery: pending (due at next_attempt_at, or being sent under a lease) ->
    succeeded (a 2xx answer) | failed (every allowed attempt used)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
