"""The Celery executor (API side): enqueue job ids after commit; keep leases honest."""

from __future__ import annotations

import logging
import threading
from typing import Any

from service.config import Settings
from service.store.session import Database

from . import doorbells, identity, reaper
from .celery_app import enqueue, make_celery

log = logging.getLogger(__name__)


class CeleryExecutor:
    """Sends "dropnet.run_job" messages; a maintenance thread reaps expired leases, re-enqueues
    the jobs it requeues and rings again for queued jobs whose doorbells were lost."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.app = make_celery(settings)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._maintain, name="reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def notify(self, job_id: str) -> None:
        try:
            enqueue(self.app, job_id)
        except Exception:  # the job stays queued in the table; the reaper re-rings later
            log.exception("could not enqueue job %s", job_id, extra={"job_id": job_id})

    def health(self) -> dict[str, Any]:
        broker_ok, broker_error = True, None
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as error:
            broker_ok, broker_error = False, f"{type(error).__name__}: {error}"[:300]
        window = max(10.0, 5 * self.settings.heartbeat_seconds)
        with self.db.read() as session:
            seen = identity.seen_since(session, window)
        result: dict[str, Any] = {
            "ok": broker_ok and bool(seen), "executor": "celery", "broker": broker_ok,
            "workers_seen": [{"id": w.id, "host": w.host, "pid": w.pid,
                              "last_seen_at": w.last_seen_at.isoformat(),
                              "current_job_id": w.current_job_id} for w in seen],
            "window_seconds": window,
        }
        if broker_error:
            result["broker_error"] = broker_error
        return result

    def _maintain(self) -> None:
        while not self._stopping.wait(self.settings.poll_seconds):
            try:
                reaper.reap(self.db, self.settings, self.notify)
                doorbells.ring_missing(self.db, self.app)
            except Exception:
                log.exception("maintenance pass failed; retrying")
