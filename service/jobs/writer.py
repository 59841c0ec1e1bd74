"""MetricWriter: a running attempt's fenced writes (metric batches, progress, checkpoints)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from service.engine.training import MetricRecord
from service.store import artifacts
from service.store import jobs as job_rows
from service.store import metrics as metric_rows
from service.store.session import Database
from service.telemetry import ITERATIONS, METRIC_ROWS

from .lease import Lease


class MetricWriter:
    """Writes one attempt's metric records in batches, each batch in one transaction that also
    renews the lease, records progress and (when given) stores a checkpoint. Every transaction
    first renews `lease` (which checks the attempt's lease token) and writes nothing once the
    lease is lost."""

    def __init__(self, db: Database, lease: Lease, *, start_iteration: int,
                 latest: dict[str, float] | None = None) -> None:
        self.db = db
        self.lease = lease
        self.rows_written = 0
        self._series: dict[str, int] = {}
        self._latest: dict[str, float] = dict(latest or {})
        self._rate_mark = (time.monotonic(), start_iteration)
        self._iterations_per_second: float | None = None
        self._flushed_iteration = start_iteration

    def flush(self, records: Sequence[MetricRecord], *, iteration: int,
              checkpoint: bytes | None = None) -> None:
        """Store `records` (and `checkpoint`, taken after `iteration`) in one transaction.

        Raises LeaseLost, having written nothing, when the lease is no longer this attempt's.
        """
        self._latest.update({record.key: record.value for record in records})
        with self.db.write() as session:
            self._renew(session, iteration, checkpointed=checkpoint is not None)
            self._insert(session, records)
            if checkpoint is not None:
                artifacts.put_checkpoint(session, self.lease.claim.job_id, iteration, checkpoint)
        METRIC_ROWS.inc(len(records))
        ITERATIONS.inc(max(0, iteration - self._flushed_iteration))
        self._flushed_iteration = iteration

    def _renew(self, session: Session, iteration: int, *, checkpointed: bool) -> None:
        now = time.monotonic()
        mark_time, mark_iteration = self._rate_mark
        if now - mark_time >= 1.0 and iteration > mark_iteration:
            self._iterations_per_second = (iteration - mark_iteration) / (now - mark_time)
            self._rate_mark = (now, iteration)
        progress: dict[str, Any] = {"iteration": iteration,
                                    "iterations_per_second": self._iterations_per_second,
                                    "latest_metrics": dict(self._latest)}
        if checkpointed:  # the checkpoint row is written later in this same transaction
            progress["checkpoint_iteration"] = iteration
        self.lease.renew(session, progress)

    def _insert(self, session: Session, records: Sequence[MetricRecord]) -> None:
        if not records:
            return
        series = self._series
        try:
            rows = [(series[r.key], r.step, r.value, r.timestamp) for r in records]
        except KeyError:  # the first records of a key: create its series
            new_keys = {r.key for r in records} - series.keys()
            series.update(metric_rows.series_ids(session, self.lease.claim.job_id, new_keys))
            rows = [(series[r.key], r.step, r.value, r.timestamp) for r in records]
        metric_rows.insert_points(session, rows)
        self.rows_written += len(records)


def store_checkpoint(session: Session, job_id: str, iteration: int, data: bytes) -> None:
    """Replace the job's checkpoint (callers have checked the lease in this transaction)."""
    artifacts.put_checkpoint(session, job_id, iteration, data)
    job_rows.set_checkpoint_iteration(session, job_id, iteration)
