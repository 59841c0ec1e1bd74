"""One worker process's setup, the same for a local worker and a Celery consumer.

`worker_process` configures logging, limits BLAS threads, lowers the CPU priority when asked,
opens the Database with the settings' SQLite busy timeout, gives the process its identity,
stops it when its parent dies, and keeps its row in the workers table fresh until it ends.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from service.config import Settings
from service.store.jobs import WorkerIdentity
from service.store.session import Database

from . import identity
from .orphan import stop_when_orphaned

log = logging.getLogger(__name__)

WorkerKind = Literal["local", "celery"]

SEEN_EVERY_SECONDS = 1.0
"""The workers row is touched at most this often: it feeds /readyz, whose window is at least
10 s, so a heartbeat of a fraction of a second need not add as many writes."""


@dataclass(frozen=True)
class WorkerProcess:
    """What a worker process runs jobs with; `shutdown` is set when it must stop."""

    settings: Settings
    db: Database
    worker: WorkerIdentity
    shutdown: threading.Event


@contextmanager
def worker_process(settings_data: dict[str, Any], *, kind: WorkerKind, niceness: int = 0,
                   shutdown: threading.Event | None = None) -> Iterator[WorkerProcess]:
    """Set this process up as a worker from `settings_data` (a `Settings.model_dump()`).

    `niceness` is added to the process's CPU niceness (0: unchanged). `shutdown` (a new event
    when None) is set when the block ends; the caller sets it to stop the process's work.
    On exit the workers row is deleted and the database disposed.
    """
    from threadpoolctl import threadpool_limits

    from service.logs import configure_logging

    settings = Settings(**settings_data)
    configure_logging(settings)
    if niceness:
        os.nice(niceness)
    limits = threadpool_limits(settings.effective_blas_threads())
    db = Database(settings.database_url,
                  busy_timeout_seconds=settings.sqlite_busy_timeout_seconds, pool_size=2)
    worker = identity.this_worker()
    shutdown = shutdown or threading.Event()
    stop_when_orphaned()
    beat = threading.Thread(target=_keep_seen, args=(db, worker, kind, settings, shutdown),
                            name="worker-heartbeat", daemon=True)
    beat.start()
    log.info("%s worker %s started (BLAS threads: %d)", kind, worker.id,
             settings.effective_blas_threads())
    try:
        yield WorkerProcess(settings=settings, db=db, worker=worker, shutdown=shutdown)
    finally:
        shutdown.set()
        beat.join()  # its last touch must not recreate the row deleted below
        with db.write() as session:
            identity.forget(session, worker)
        db.dispose()
        del limits
        log.info("%s worker %s stopped", kind, worker.id)


def _keep_seen(db: Database, worker: WorkerIdentity, kind: WorkerKind, settings: Settings,
               shutdown: threading.Event) -> None:
    """Keep this worker's row in the workers table fresh (for /readyz), from now on until
    `shutdown` is set. A failed touch (the database is down) is retried at the next beat."""
    while True:
        try:
            with db.write() as session:
                identity.touch(session, worker, kind=kind)
        except Exception:
            log.warning("worker heartbeat failed", exc_info=True)
        if shutdown.wait(max(settings.heartbeat_seconds, SEEN_EVERY_SECONDS)):
            return
