"""`dropnet worker`: N Celery consumer processes, each running one job at a time.

Each consumer uses Celery's solo pool, so a job runs in the consumer's own process: on SIGTERM
Celery's warm shutdown signal reaches the running job, which checkpoints, gives its job back to
the queue (and re-enqueues it) and returns within seconds, instead of holding the shutdown for
the rest of an hour-long task. The parent process forwards signals and runs the Supervisor:
it restarts consumers that die (requeuing their jobs at once), reaps expired leases and rings
again for queued jobs whose doorbells were lost.
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

from . import doorbells
from .process import worker_process
from .supervisor import Supervisor

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("spawn")


def run_worker(settings: Settings, *, concurrency: int | None) -> None:
    from service.logs import configure_logging

    from .celery_app import enqueue, make_celery

    configure_logging(settings)
    count = concurrency or os.cpu_count() or 1
    threads = settings.effective_blas_threads(count)
    data = settings.model_dump() | {"blas_threads": threads}
    db = Database(settings.database_url,
                  busy_timeout_seconds=settings.sqlite_busy_timeout_seconds, pool_size=2)
    app = make_celery(settings)
    stopping = threading.Event()
    supervisor = Supervisor(db, settings, lambda index: _spawn(data, index), count=count,
                            notify=lambda job_id: enqueue(app, job_id),
                            ring_missing=lambda: doorbells.ring_missing(db, app),
                            stopping=stopping)

    def forward(signum: int, _frame: Any) -> None:
        stopping.set()
        supervisor.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    supervisor.start()
    log.info("dropnet worker: %d Celery consumers, %d BLAS thread(s) each", count, threads)
    supervisor.run(settings.poll_seconds)
    supervisor.join(60)
    db.dispose()


def _spawn(data: dict[str, Any], index: int) -> BaseProcess:
    process = _CONTEXT.Process(target=consumer_main, args=(data, index),
                               name=f"dropnet-consumer-{index}")
    process.start()
    return process


def consumer_main(settings_data: dict[str, Any], index: int) -> None:
    """One Celery consumer (solo pool): its task runs JobRunner.run(job_id)."""
    from celery import signals

    from service.jobs.runner import JobRunner

    from .celery_app import enqueue, make_celery, register_task

    with worker_process(settings_data, kind="celery") as process:
        settings = process.settings
        app = make_celery(settings)
        runner = JobRunner(process.db, settings, process.worker, shutdown=process.shutdown,
                           on_requeue=lambda job_id: enqueue(app, job_id))
        register_task(app, runner.run)

        def shutting_down(**_: Any) -> None:
            process.shutdown.set()

        signals.worker_shutting_down.connect(shutting_down, weak=False)
        app.worker_main(["worker", "--pool=solo", "--concurrency=1", "-Q", "dropnet",
                         "-n", f"dropnet{index}-{os.getpid()}@%h", "--without-gossip",
                         "--without-mingle", "--without-heartbeat",
                         f"--loglevel={settings.log_level.upper()}"])
