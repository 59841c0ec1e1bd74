"""Lease: a running attempt's ownership of its job, the one object that renews it.

A claim gives the attempt a lease token and an expiry. `Lease.renew` extends the expiry inside
the caller's transaction and only if the token is still this attempt's (fencing): the metric
writer, the runner's resume and release steps and the lease's own renewal thread all go
through it, so every write on behalf of the attempt carries the token, and the first renewal
that finds the job taken, finished or deleted marks the lease lost for everyone.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session

from service.store import jobs as job_rows
from service.store.session import Database

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """This attempt no longer owns its job (it was reclaimed, finished elsewhere or deleted)."""


class Lease:
    """The lease of one claimed attempt; renewed every `interval` seconds on its own thread
    while used as a context manager, independent of how long an iteration takes.

    `cancel_requested` and `lost` only ever turn True: a cancellation is never withdrawn and a
    lost lease is never regained.
    """

    def __init__(self, db: Database, claim: job_rows.Claim, *, lease_seconds: float,
                 interval: float) -> None:
        self.db = db
        self.claim = claim
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.cancel_requested = False
        self.lost = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._renew_periodically,
                                        name=f"lease-{claim.job_id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stopped.set()

    def renew(self, session: Session, progress: dict[str, Any]) -> None:
        """Extend the lease and record `progress` (Job column values) in `session`'s
        transaction, noting a cancellation request.

        Raises LeaseLost (and marks the lease lost) when the token is no longer this attempt's.
        """
        cancel = job_rows.renew(session, self.claim, lease_seconds=self.lease_seconds,
                                progress=progress)
        if cancel is None:
            self.lost = True
            raise LeaseLost(self.claim.job_id)
        if cancel:
            self.cancel_requested = True

    def should_stop(self) -> bool:
        """Whether the attempt must stop training: cancelled, or the lease is lost."""
        return self.cancel_requested or self.lost

    def _renew_periodically(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                with self.db.write() as session:
                    self.renew(session, {})
            except LeaseLost:
                return
            except Exception:  # a transient database error: the next renewal retries
                log.warning("renewing the lease of job %s failed", self.claim.job_id,
                            exc_info=True)
