"""`dropnet worker`: N Celery consumer processes, each running one job at a time.

Each consumer uses Celery's solo pool, so a job runs in the consumer's own process: on SIGTERM
Celery's warm shutdown signal reaches the running job, which checkpoints, gives its job back to
the queue (and re-enqueues it) and returns within seconds, instead of holding the shutdown for
the rest of an hour-long task. The parent process forwards signals, restarts consumers that
die, reaps expired leases and rings again for queued jobs whose doorbells were lost.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.process import BaseProcess
from typing import Any

from service.config import Settings
from service.store.session import Database

from . import doorbells, identity, reaper
from .orphan import stop_when_orphaned

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("spawn")


def run_worker(settings: Settings, *, concurrency: int | None) -> None:
    from service.logs import configure_logging

    configure_logging(settings)
    count = concurrency or os.cpu_count() or 1
    threads = settings.blas_threads or max(1, (os.cpu_count() or 1) // count)
    data = settings.model_dump() | {"blas_threads": threads}
    processes = [_spawn(data, index) for index in range(count)]
    stopping = threading.Event()

    def forward(signum: int, _frame: Any) -> None:
        stopping.set()
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    db = Database(settings.database_url, pool_size=2)
    from .celery_app import enqueue, make_celery

    app = make_celery(settings)
    log.info("dropnet worker: %d Celery consumers, %d BLAS thread(s) each", count, threads)
    while not stopping.wait(settings.poll_seconds):
        for index, process in enumerate(processes):
            if not process.is_alive() and not stopping.is_set():
                log.error("consumer %s exited with code %s; restarting it", process.pid,
                          process.exitcode)
                processes[index] = _spawn(data, index)
        try:
            reaper.reap(db, settings, lambda job_id: enqueue(app, job_id))
            doorbells.ring_missing(db, app)
        except Exception:
            log.exception("maintenance pass failed; retrying")
    for process in processes:
        process.join(60)
    db.dispose()


def _spawn(data: dict[str, Any], index: int) -> BaseProcess:
    process = _CONTEXT.Process(target=consumer_main, args=(data, index),
                               name=f"dropnet-consumer-{index}")
    process.start()
    return process


def consumer_main(settings_data: dict[str, Any], index: int) -> None:
    """One Celery consumer (solo pool): its task runs JobRunner.run(job_id)."""
    from celery import signals
    from threadpoolctl import threadpool_limits

    from service.jobs.runner import JobRunner
    from service.logs import configure_logging

    from .celery_app import enqueue, make_celery, register_task

    settings = Settings(**settings_data)
    configure_logging(settings)
    limits = threadpool_limits(settings.effective_blas_threads())
    db = Database(settings.database_url, pool_size=2)
    app = make_celery(settings)
    shutdown = threading.Event()
    worker = identity.this_worker()
    runner = JobRunner(db, settings, worker, shutdown=shutdown,
                       on_requeue=lambda job_id: enqueue(app, job_id))
    register_task(app, runner.run)

    def shutting_down(**_: Any) -> None:
        shutdown.set()

    signals.worker_shutting_down.connect(shutting_down, weak=False)
    stop_when_orphaned()
    beat = threading.Thread(target=_heartbeat, args=(db, worker, settings, shutdown),
                            daemon=True)
    beat.start()
    try:
        app.worker_main(["worker", "--pool=solo", "--concurrency=1", "-Q", "dropnet",
                         "-n", f"dropnet{index}-{os.getpid()}@%h", "--without-gossip",
                         "--without-mingle", "--without-heartbeat",
                         f"--loglevel={settings.log_level.upper()}"])
    finally:
        shutdown.set()
        with db.write() as session:
            identity.forget(session, worker)
        db.dispose()
        del limits


def _heartbeat(db: Database, worker: identity.WorkerIdentity, settings: Settings,
               shutdown: threading.Event) -> None:
    """Keep this consumer's row in the workers table fresh (for /readyz)."""
    while not shutdown.wait(settings.heartbeat_seconds):
        try:
            with db.write() as session:
                identity.touch(session, worker, kind="celery")
        except Exception:
            log.warning("worker heartbeat failed", exc_info=True)
