"""The outbox: a delivery row added in the same transaction as the status change it reports,
so a committed job end always has its delivery and a rolled-back one never does."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from service.store import deliveries as delivery_rows
from service.store import jobs as job_rows
from service.store.models import Job, WebhookDelivery
from service.store.statuses import TERMINAL

MESSAGE_ID_PREFIX = "msg_"


def message_id(delivery_id: str) -> str:
    """The `webhook-id` of a delivery: the same on every attempt, so receivers can drop
    duplicates."""
    return MESSAGE_ID_PREFIX + delivery_id


def record_job_end(session: Session, job: Job) -> WebhookDelivery | None:
    """Add the delivery of `job`'s terminal status when its spec's `notify` asks for that
    event; None otherwise."""
    notify = (job.spec or {}).get("notify")
    if notify is None or job.status not in TERMINAL or job.status not in notify["events"]:
        return None
    body = json.dumps(event(job), separators=(",", ":"), sort_keys=True)
    return delivery_rows.create(session, delivery_id=uuid.uuid4().hex, owner=job.owner,
                                job_id=job.id, event_type=f"job.{job.status}",
                                url=notify["url"], body=body)


def record_job_ends(session: Session, job_ids: list[str]) -> None:
    """`record_job_end` for each of these jobs (just moved to a terminal status)."""
    for job_id in job_ids:
        job = job_rows.get(session, job_id)
        if job is not None:
            record_job_end(session, job)


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
