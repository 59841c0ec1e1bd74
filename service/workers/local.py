"""The local executor: N training worker processes beside the API, and their supervisor.

Each worker process loops: claim the oldest queued job and run it with JobRunner; when there is
none, wait for a doorbell (or poll_seconds). The supervisor thread restarts dead workers,
requeues the jobs they held at once, and reaps expired leases.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
from multiprocessing.process import BaseProcess
from typing import Any

from service.config import Settings
from service.store import jobs as job_rows
from service.store.session import Database

from . import identity, reaper
from .orphan import stop_when_orphaned

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("spawn")
WORKER_NICENESS = 10


class LocalExecutor:
    """Starts `settings.workers` processes running `worker_main`."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._doorbell: Any = _CONTEXT.Queue()
        self._stop_workers = _CONTEXT.Event()
        self._stopping = threading.Event()
        self._processes: list[BaseProcess] = []
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor",
                                            daemon=True)

    def start(self) -> None:
        self._processes = [self._spawn(i) for i in range(self.settings.workers)]
        self._supervisor.start()
        reaper.reap(self.db, self.settings, self.notify)
        # Jobs queued while no server ran: ring once for each.
        with self.db.read() as session:
            for job_id in job_rows.queued_ids(session, limit=self.settings.workers * 4):
                self.notify(job_id)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every worker to checkpoint and release its job, then wait for them."""
        self._stopping.set()
        self._stop_workers.set()
        for _ in self._processes:
            self.notify("")  # wake idle workers now rather than at their next poll
        for process in self._processes:
            process.join(timeout)
        for process in self._processes:
            if process.is_alive():
                log.error("worker %s did not stop in %.0f s; killing it", process.pid, timeout)
                process.kill()
                process.join(5)
        self._doorbell.close()

    def notify(self, job_id: str) -> None:
        # Closed during shutdown: the jobs table still has the job.
        with contextlib.suppress(ValueError, OSError):
            self._doorbell.put_nowait(job_id)

    def health(self) -> dict[str, Any]:
        alive = sum(process.is_alive() for process in self._processes)
        return {"ok": alive == self.settings.workers, "executor": "local",
                "workers": self.settings.workers, "workers_alive": alive,
                "pids": [p.pid for p in self._processes if p.is_alive()]}

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def _spawn(self, index: int) -> BaseProcess:
        process = _CONTEXT.Process(
            target=worker_main, name=f"dropnet-worker-{index}",
            args=(self.settings.model_dump(), self._doorbell, self._stop_workers), daemon=False)
        process.start()
        return process

    def _supervise(self) -> None:
        while not self._stopping.wait(min(self.settings.poll_seconds, 1.0)):
            try:
                self._restart_dead()
                reaper.reap(self.db, self.settings, self.notify)
            except Exception:
                log.exception("supervisor pass failed; retrying")

    def _restart_dead(self) -> None:
        host = identity.this_worker().host
        for index, process in enumerate(self._processes):
            if process.is_alive() or self._stopping.is_set():
                continue
            log.error("worker %s exited with code %s; restarting it", process.pid,
                      process.exitcode)
            if process.pid is not None:
                with self.db.write() as session:
                    job_rows.expire_worker(session, host=host, pid=process.pid)
            self._processes[index] = self._spawn(index)


def worker_main(settings_data: dict[str, Any], doorbell: Any, stop: Any) -> None:
    """A worker process: claim and run jobs until `stop` is set or SIGTERM arrives."""
    from threadpoolctl import threadpool_limits

    from service.jobs.runner import JobRunner
    from service.logs import configure_logging

    settings = Settings(**settings_data)
    configure_logging(settings)
    # Training is batch work; the API beside it answers people: it gets the CPU first.
    os.nice(WORKER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    shutdown = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: shutdown.set())
    stop_when_orphaned()
    threading.Thread(target=lambda: (stop.wait(), shutdown.set()), daemon=True).start()
    limits = threadpool_limits(settings.effective_blas_threads())
    db = Database(settings.database_url,
                  busy_timeout_seconds=settings.sqlite_busy_timeout_seconds, pool_size=2)
    worker = identity.this_worker()
    runner = JobRunner(db, settings, worker, shutdown=shutdown,
                       on_requeue=lambda job_id: doorbell.put_nowait(job_id))
    log.info("worker %s started (BLAS threads: %s)", worker.id,
             settings.effective_blas_threads())
    try:
        while not shutdown.is_set():
            with db.write() as session:
                identity.touch(session, worker, kind="local")
            if runner.run() is None:
                with contextlib.suppress(queue.Empty):
                    doorbell.get(timeout=settings.poll_seconds)
    finally:
        with db.write() as session:
            identity.forget(session, worker)
        db.dispose()
        del limits
        log.info("worker %s stopped", worker.id)
