"""The outbox: a delivery row added in the same transaction as the status change it reports,
so a committed job end always has its delivery and a rolled-back one never does.

A sweep's delivery is added by the transaction that ends its last run. That transaction locks
the sweep row after its own run's status change and before counting the runs, so of two runs
ending at once on PostgreSQL the one that locks second sees the other's end (committed before
the lock was released) and writes the delivery: exactly once (and a unique index on
webhook_deliveries.sweep_id refuses a second)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from service.store import deliveries as delivery_rows
from service.store import jobs as job_rows
from service.store import sweep_summary
from service.store import sweeps as sweep_rows
from service.store.base import utcnow
from service.store.models import Job, Sweep, WebhookDelivery
from service.store.statuses import TERMINAL, JobStatus, sweep_status

MESSAGE_ID_PREFIX = "msg_"


def message_id(delivery_id: str) -> str:
    """The `webhook-id` of a delivery: the same on every attempt, so receivers can drop
    duplicates."""
    return MESSAGE_ID_PREFIX + delivery_id


def record_job_end(session: Session, job: Job) -> WebhookDelivery | None:
    """Add the delivery of `job`'s terminal status when its spec's `notify` asks for that
    event, and its sweep's (`record_sweep_end`) when it was the sweep's last run; the job's
    delivery, or None."""
    if job.status not in TERMINAL:
        return None
    if job.sweep_id is not None:
        record_sweep_end(session, job.sweep_id)
    notify = (job.spec or {}).get("notify")
    if notify is None or job.status not in notify["events"]:
        return None
    return delivery_rows.create(session, delivery_id=uuid.uuid4().hex, owner=job.owner,
                                job_id=job.id, event_type=f"job.{job.status}",
                                url=notify["url"], body=_encoded(event(job)))


def record_job_ends(session: Session, job_ids: list[str]) -> None:
    """`record_job_end` for each of these jobs (just moved to a terminal status)."""
    for job_id in job_ids:
        job = job_rows.get(session, job_id)
        if job is not None:
            record_job_end(session, job)


def record_sweep_end(session: Session, sweep_id: str) -> WebhookDelivery | None:
    """Add the sweep's delivery when its spec's `notify` asks for the status it has now that
    no run is queued or running, and it has none yet; that delivery, or None. Call it after
    the status change of one of its runs, in the same transaction (it locks the sweep row)."""
    found = sweep_rows.get(session, sweep_id)
    if found is None or found.spec.get("notify") is None:
        return None
    sweep = sweep_rows.lock(session, sweep_id)
    if sweep is None:
        return None
    notify = sweep.spec["notify"]
    counts = sweep_rows.status_counts(session, [sweep.id])[sweep.id]
    status = sweep_status(counts)
    if (status not in TERMINAL or status not in notify["events"]
            or delivery_rows.for_sweep(session, sweep.id)):
        return None
    body = sweep_event(sweep, status, counts, sweep_rows.run_results(session, sweep))
    return delivery_rows.create(session, delivery_id=uuid.uuid4().hex, owner=sweep.owner,
                                sweep_id=sweep.id, event_type=f"sweep.{status}",
                                url=notify["url"], body=_encoded(body))


def _encoded(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), sort_keys=True)


def sweep_event(sweep: Sweep, status: JobStatus, counts: dict[str, int],
                runs: list[sweep_summary.RunResult]) -> dict[str, Any]:
    """The message body: {"type": "sweep.<status>", "timestamp", "data": {"sweep_id", "name",
    "status", "counts": {run status: number}, "runs": number, "best_run": {"job_id",
    "parameters", "status", "final": {metric: value}, "accuracy_gap", "loss_gap",
    "best_test_accuracy", "best_test_accuracy_step"} or None (no run has the objective's
    metric), "objective": {"metric", "goal"}, "created_at"}}."""
    best = sweep_summary.objective_best(sweep.spec, runs)
    return {"type": f"sweep.{status}", "timestamp": utcnow().isoformat(), "data": {
        "sweep_id": sweep.id, "name": sweep.name, "status": str(status), "counts": counts,
        "runs": sum(counts.values()),
        "best_run": dataclasses.asdict(best) if best is not None else None,
        "objective": sweep.spec.get("objective", {}),
        "created_at": sweep.created_at.isoformat()}}


def event(job: Job) -> dict[str, Any]:
    """The message body: {"type": "job.<status>", "timestamp", "data": {the job's outcome}}."""
    finished = job.finished_at.isoformat() if job.finished_at else None
    return {"type": f"job.{job.status}", "timestamp": finished, "data": {
        "job_id": job.id, "name": job.name, "status": str(job.status), "error": job.error,
        "iteration": job.iteration, "total_iterations": job.total_iterations,
        "sweep_id": job.sweep_id, "metrics": job.latest_metrics or {},
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": finished}}
