"""Requeue jobs whose worker vanished (expired lease), or fail them after max_attempts."""

from __future__ import annotations

import logging
from collections.abc import Callable

from service.config import Settings
from service.store import jobs as job_rows
from service.store.session import Database
from service.webhooks import outbox

from . import identity

log = logging.getLogger(__name__)

FORGET_WORKERS_AFTER_SECONDS = 24 * 3600.0


def reap(db: Database, settings: Settings, notify: Callable[[str], None]
         ) -> list[tuple[str, job_rows.JobStatus]]:
    """One pass: expired leases become queued (and `notify` rings for them) or failed."""
    with db.write() as session:
        changed = job_rows.reap_expired(session, max_attempts=settings.max_attempts)
        outbox.record_job_ends(session, [job_id for job_id, status in changed
                                         if status == job_rows.FAILED])
        identity.forget_silent(session, FORGET_WORKERS_AFTER_SECONDS)
    for job_id, status in changed:
        log.warning("job %s lost its worker: now %s", job_id, status, extra={"job_id": job_id})
        if status == job_rows.QUEUED:
            notify(job_id)
    return changed
