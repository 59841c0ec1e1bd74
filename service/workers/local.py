"""The local executor: N training worker processes beside the API, and their supervisor.

Each worker process (set up by `process.worker_process`) loops in `run_jobs`: claim the oldest
queued job and run it with JobRunner; when there is none, wait for a doorbell (or
poll_seconds). A Supervisor thread restarts dead workers, requeues the jobs they held at once,
and reaps expired leases.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import threading
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Protocol

from service.config import Settings
from service.store import jobs as job_rows
from service.store.session import Database

from . import reaper
from .process import worker_process
from .supervisor import Supervisor

if TYPE_CHECKING:
    from service.jobs.runner import JobRunner

_CONTEXT = multiprocessing.get_context("spawn")
WORKER_NICENESS = 10


class LocalExecutor:
    """Starts `settings.workers` processes running `worker_main`, under a Supervisor thread."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._doorbell: Any = _CONTEXT.Queue()
        self._stopping = threading.Event()
        self.supervisor = Supervisor(db, settings, self._spawn, count=settings.workers,
                                     notify=self.notify, stopping=self._stopping)
        self._thread = threading.Thread(target=self.supervisor.run,
                                        args=(min(settings.poll_seconds, 1.0),),
                                        name="supervisor", daemon=True)

    def start(self) -> None:
        self.supervisor.start()
        self._thread.start()
        reaper.reap(self.db, self.settings, self.notify)
        # Jobs queued while no server ran: ring once for each.
        with self.db.read() as session:
            for job_id in job_rows.queued_ids(session, limit=self.settings.workers * 4):
                self.notify(job_id)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every worker to checkpoint and release its job (SIGTERM), then wait for them.

        A signal rather than a shared multiprocessing Event: setting an Event that a SIGKILLed
        worker was waiting on blocks forever.
        """
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)  # so that no worker is started after the signal
        self.supervisor.terminate()
        for _ in self.supervisor.processes:
            self.notify("")  # wake idle workers now rather than at their next poll
        self.supervisor.join(timeout)
        self._doorbell.close()

    def notify(self, job_id: str) -> None:
        # Closed during shutdown: the jobs table still has the job.
        with contextlib.suppress(ValueError, OSError):
            self._doorbell.put_nowait(job_id)

    def health(self) -> dict[str, Any]:
        alive = self.supervisor.alive()
        return {"ok": len(alive) == self.settings.workers, "executor": "local",
                "workers": self.settings.workers, "workers_alive": len(alive),
                "pids": [p.pid for p in alive]}

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.supervisor.processes if p.pid is not None]

    def _spawn(self, index: int) -> BaseProcess:
        process = _CONTEXT.Process(
            target=worker_main, name=f"dropnet-worker-{index}",
            args=(self.settings.model_dump(), self._doorbell), daemon=False)
        process.start()
        return process


class Doorbell(Protocol):
    """Where a local worker waits for job ids (a multiprocessing or a queue.Queue)."""

    def get(self, block: bool = True, timeout: float | None = None) -> str: ...

    def put_nowait(self, item: str) -> None: ...


def worker_main(settings_data: dict[str, Any], doorbell: Doorbell) -> None:
    """A worker process: claim and run jobs until SIGTERM arrives (from the executor's stop or
    the orphan watch), then release the running job and exit."""
    from service.jobs.runner import JobRunner

    shutdown = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    signal.signal(signal.SIGTERM, lambda *_: shutdown.set())
    # Training is batch work; the API beside it answers people: it gets the CPU first.
    with worker_process(settings_data, kind="local", niceness=WORKER_NICENESS,
                        shutdown=shutdown) as process:
        runner = JobRunner(process.db, process.settings, process.worker, shutdown=shutdown,
                           on_requeue=doorbell.put_nowait)
        run_jobs(runner, doorbell, shutdown, poll_seconds=process.settings.poll_seconds)


def run_jobs(runner: JobRunner, doorbell: Doorbell, shutdown: threading.Event, *,
             poll_seconds: float) -> None:
    """The local worker loop: run the oldest queued job, one after another; when none is
    queued, wait for a doorbell (or `poll_seconds`). Returns once `shutdown` is set, after
    the job running then has been released (checkpointed and requeued)."""
    while not shutdown.is_set():
        if runner.run() is None:
            with contextlib.suppress(queue.Empty):
                doorbell.get(timeout=poll_seconds)
