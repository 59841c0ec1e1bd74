"""A worker's identity and its row in the workers table (seen by /readyz)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.store.base import utcnow
from service.store.jobs import WorkerIdentity
from service.store.models import WorkerRecord


def this_worker() -> WorkerIdentity:
    host, pid = socket.gethostname(), os.getpid()
    return WorkerIdentity(id=f"{host}:{pid}:{uuid.uuid4().hex[:8]}", host=host, pid=pid)


def touch(session: Session, worker: WorkerIdentity, *, kind: str,
          current_job_id: str | None = None) -> None:
    """Record that `worker` is alive now."""
    record = session.get(WorkerRecord, worker.id)
    now = utcnow()
    if record is None:
        session.add(WorkerRecord(id=worker.id, kind=kind, host=worker.host, pid=worker.pid,
                                 started_at=now, last_seen_at=now,
                                 current_job_id=current_job_id))
    else:
        record.last_seen_at = now
        record.current_job_id = current_job_id


def forget(session: Session, worker: WorkerIdentity) -> None:
    session.execute(delete(WorkerRecord).where(WorkerRecord.id == worker.id))


def forget_silent(session: Session, seconds: float) -> int:
    """Delete the rows of workers not seen for `seconds` (processes that were killed)."""
    cutoff = utcnow() - dt.timedelta(seconds=seconds)
    return session.execute(delete(WorkerRecord).where(WorkerRecord.last_seen_at < cutoff)).rowcount


def seen_since(session: Session, seconds: float) -> list[WorkerRecord]:
    cutoff = utcnow() - dt.timedelta(seconds=seconds)
    query = select(WorkerRecord).where(WorkerRecord.last_seen_at >= cutoff)
    return list(session.scalars(query.order_by(WorkerRecord.host, WorkerRecord.pid)))
