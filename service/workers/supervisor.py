"""The supervisor of a host's worker processes, the same for both executors.

Each pass restarts children that died and expires the leases they held (so their jobs are
requeued at once, not when the lease runs out), reaps expired leases (requeued jobs are rung
for with `notify`), and, when given `ring_missing`, rings again for queued jobs whose
doorbells were lost (Celery; the local workers poll the jobs table and need none).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from service.config import Settings
from service.store import jobs as job_rows
from service.store.session import Database

from . import identity, reaper

log = logging.getLogger(__name__)


class Supervisor:
    """Keeps `count` children started by `spawn(index)` alive until `stopping` is set."""

    def __init__(self, db: Database, settings: Settings, spawn: Callable[[int], BaseProcess],
                 *, count: int, notify: Callable[[str], None],
                 ring_missing: Callable[[], object] | None = None,
                 stopping: threading.Event) -> None:
        self.db = db
        self.settings = settings
        self.spawn = spawn
        self.count = count
        self.notify = notify
        self.ring_missing = ring_missing
        self.stopping = stopping
        self.processes: list[BaseProcess] = []
        self.host = identity.this_worker().host

    def start(self) -> None:
        """Start the children."""
        self.processes = [self.spawn(index) for index in range(self.count)]

    def run(self, interval: float) -> None:
        """A pass every `interval` seconds until `stopping` is set; a failed pass is logged
        and retried."""
        while not self.stopping.wait(interval):
            try:
                self.check()
            except Exception:
                log.exception("supervisor pass failed; retrying")

    def check(self) -> None:
        """One pass: restart dead children and requeue their jobs, reap, ring lost doorbells."""
        self.restart_dead()
        reaper.reap(self.db, self.settings, self.notify)
        if self.ring_missing is not None:
            self.ring_missing()

    def restart_dead(self) -> None:
        """Replace each child that exited (unless stopping), expiring the leases it held."""
        for index, process in enumerate(self.processes):
            if process.is_alive() or self.stopping.is_set():
                continue
            log.error("worker %s exited with code %s; restarting it", process.pid,
                      process.exitcode)
            if process.pid is not None:
                with self.db.write() as session:
                    job_rows.expire_worker(session, host=self.host, pid=process.pid)
            self.processes[index] = self.spawn(index)

    def terminate(self) -> None:
        """Send SIGTERM to every child still running (a worker then releases its job)."""
        for process in self.alive():
            process.terminate()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for each child to exit, then kill those still alive."""
        for process in self.processes:
            process.join(timeout)
        for process in self.processes:
            if process.is_alive():
                log.error("worker %s did not stop in %.0f s; killing it", process.pid, timeout)
                process.kill()
                process.join(5)

    def alive(self) -> list[BaseProcess]:
        """The children running now."""
        return [process for process in self.processes if process.is_alive()]
