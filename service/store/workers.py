"""Worker rows: which training processes are alive (seen by /readyz and the metrics gauges).
Functions take the caller's session and never commit."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from .base import utcnow
from .jobs import WorkerIdentity
from .models import WorkerRecord


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
    """Delete `worker`'s row (it is shutting down)."""
    session.execute(delete(WorkerRecord).where(WorkerRecord.id == worker.id))


def forget_silent(session: Session, seconds: float) -> int:
    """Delete the rows of workers not seen for `seconds` (processes that were killed)."""
    cutoff = utcnow() - dt.timedelta(seconds=seconds)
    result = cast(CursorResult[Any],
                  session.execute(delete(WorkerRecord).where(WorkerRecord.last_seen_at < cutoff)))
    return result.rowcount


def seen_since(session: Session, seconds: float) -> list[WorkerRecord]:
    """Workers seen within the last `seconds`, by host and pid."""
    cutoff = utcnow() - dt.timedelta(seconds=seconds)
    query = select(WorkerRecord).where(WorkerRecord.last_seen_at >= cutoff)
    return list(session.scalars(query.order_by(WorkerRecord.host, WorkerRecord.pid)))
