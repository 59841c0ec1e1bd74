"""The local worker loop, the worker process and the supervisor, against real databases.

`run_jobs` runs in a thread (fast, and the assertions see its doorbell); `worker_main` and the
LocalExecutor run real spawned processes, as `dropnet serve` starts them.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.jobs.runner import JobRunner
from service.store import jobs as job_rows
from service.store.models import Job, WorkerRecord
from service.workers import identity
from service.workers.local import WORKER_NICENESS, LocalExecutor, run_jobs, worker_main
from service.workers.supervisor import Supervisor
from tests.factories import add_queued_job, spec

SPAWN = multiprocessing.get_context("spawn")
WORKER = job_rows.WorkerIdentity(id="w1", host="host-a", pid=101)


class WatchedDoorbell(queue.Queue[str]):
    """A doorbell that says when the loop starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def get(self, block: bool = True, timeout: float | None = None) -> str:
        self.waiting.set()
        return super().get(block, timeout)


def queue_job(db, spec_: dict[str, Any] | None = None) -> str:
    with db.write() as session:
        return add_queued_job(session, spec_=spec_).id


def job(db, job_id: str) -> Job:
    with db.read() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row


def outcomes(db, job_id: str) -> list[str | None]:
    with db.read() as session:
        return [attempt.outcome for attempt in job_rows.attempts(session, job_id)]


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture
def loop(db, settings) -> Iterator[Callable[..., tuple[WatchedDoorbell, threading.Event]]]:
    """loop(poll_seconds=...) runs `run_jobs` in a thread; stopped and joined at the end."""
    threads: list[tuple[threading.Thread, threading.Event, WatchedDoorbell]] = []

    def start(poll_seconds: float) -> tuple[WatchedDoorbell, threading.Event]:
        doorbell, shutdown = WatchedDoorbell(), threading.Event()
        runner = JobRunner(db, settings, WORKER, shutdown=shutdown,
                           on_requeue=doorbell.put_nowait)
        thread = threading.Thread(target=run_jobs, args=(runner, doorbell, shutdown),
                                  kwargs={"poll_seconds": poll_seconds}, daemon=True)
        thread.start()
        threads.append((thread, shutdown, doorbell))
        return doorbell, shutdown

    yield start
    for thread, shutdown, doorbell in threads:
        shutdown.set()
        doorbell.put_nowait("")
        thread.join(30)
        assert not thread.is_alive(), "the worker loop did not stop"


def test_the_loop_runs_queued_jobs_one_after_another(db, loop):
    ids = [queue_job(db), queue_job(db)]
    doorbell, _ = loop(poll_seconds=60)
    eventually(lambda: all(job(db, i).status == "succeeded" for i in ids), "both jobs succeed")
    assert [job(db, i).attempts for i in ids] == [1, 1]
    assert doorbell.waiting.wait(10), "with nothing left, the loop waits for a doorbell"


def test_an_idle_loop_waits_for_a_doorbell_and_wakes_on_one(db, loop):
    doorbell, _ = loop(poll_seconds=60)
    assert doorbell.waiting.wait(10), "an empty queue: the loop waits"
    job_id = queue_job(db)
    time.sleep(1.0)
    assert job(db, job_id).status == "queued", "no doorbell and a 60 s poll: not claimed yet"
    started = time.monotonic()
    doorbell.put_nowait(job_id)
    eventually(lambda: job(db, job_id).status == "succeeded", "the rung job succeeds", 30)
    assert time.monotonic() - started < 30


def test_shutdown_releases_the_running_job_and_ends_the_loop(db, settings):
    job_id = queue_job(db, spec(iterations=1_000_000,
                                checkpoint={"every_iterations": 100_000, "every_seconds": 3600}))
    doorbell, shutdown = WatchedDoorbell(), threading.Event()
    runner = JobRunner(db, settings, WORKER, shutdown=shutdown, on_requeue=doorbell.put_nowait)
    thread = threading.Thread(target=run_jobs, args=(runner, doorbell, shutdown),
                              kwargs={"poll_seconds": 60}, daemon=True)
    thread.start()
    eventually(lambda: job(db, job_id).iteration >= 20, "the job makes progress")
    shutdown.set()
    thread.join(30)
    assert not thread.is_alive(), "the loop did not end after shutdown"
    row = job(db, job_id)
    assert row.status == "queued" and row.checkpoint_iteration == row.iteration >= 20
    assert outcomes(db, job_id) == ["released"]
    assert not doorbell.waiting.is_set(), "it stopped without waiting for another job"
    assert doorbell.get_nowait() == job_id, "the released job was rung for"


def test_worker_main_sets_up_the_process_runs_jobs_and_stops_cleanly(db, settings):
    job_id = queue_job(db)
    doorbell = SPAWN.Queue()
    process = SPAWN.Process(target=worker_main, args=(settings.model_dump(), doorbell))
    process.start()
    try:
        def seen() -> WorkerRecord | None:
            with db.read() as session:
                return next((w for w in identity.seen_since(session, 60)
                             if w.pid == process.pid), None)

        record = eventually(seen, "the worker's row in the workers table")
        assert record.kind == "local"
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == \
            os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS
        eventually(lambda: job(db, job_id).status == "succeeded", "the queued job succeeds")
        assert job(db, job_id).worker_pid == process.pid
        process.terminate()  # SIGTERM, as LocalExecutor.stop sends it
        process.join(30)
        assert process.exitcode == 0
        assert seen() is None, "its row was deleted on the way out"
    finally:
        if process.is_alive():
            process.kill()
            process.join()
        doorbell.close()


def test_the_supervisor_restarts_a_dead_child_and_requeues_its_job_at_once(db, settings):
    stopping = threading.Event()
    notified: list[str] = []

    def spawn(_index: int):
        child = SPAWN.Process(target=time.sleep, args=(60,))
        child.start()
        return child

    supervisor = Supervisor(db, settings, spawn, count=1, notify=notified.append,
                            stopping=stopping)
    supervisor.start()
    try:
        [child] = supervisor.processes
        job_id = queue_job(db)
        held_by = job_rows.WorkerIdentity(id="child", host=supervisor.host, pid=child.pid)
        with db.write() as session:  # a lease far longer than the test
            job_rows.claim(session, held_by, lease_seconds=3600)
        supervisor.check()
        assert supervisor.processes == [child] and job(db, job_id).status == "running"
        child.kill()
        child.join()
        supervisor.check()
        [replacement] = supervisor.processes
        assert replacement is not child and replacement.is_alive()
        assert job(db, job_id).status == "queued" and notified == [job_id]
        assert outcomes(db, job_id) == ["lost"]
    finally:
        stopping.set()
        for process in supervisor.processes:
            process.kill()
        supervisor.join(5)


def test_a_killed_local_worker_is_replaced_and_its_job_resumes_long_before_its_lease_ends(
        db, settings):
    patient = settings.model_copy(update={"workers": 1, "lease_seconds": 600.0,
                                          "blas_threads": 1})
    job_id = queue_job(db, spec(iterations=1_000_000,
                                checkpoint={"every_iterations": 100, "every_seconds": 3600}))
    executor = LocalExecutor(patient, db)
    executor.start()
    try:
        running = eventually(lambda: (row := job(db, job_id)).checkpoint_iteration and row,
                             "the job runs and checkpoints", 120)
        killed = running.worker_pid
        assert killed in executor.worker_pids()
        os.kill(killed, signal.SIGKILL)
        resumed = eventually(lambda: (row := job(db, job_id)).attempts == 2
                             and row.status == "running" and row, "a second attempt", 120)
        assert resumed.worker_pid != killed and resumed.worker_pid in executor.worker_pids()
        assert outcomes(db, job_id)[0] == "lost"
        assert executor.health()["workers_alive"] == 1
    finally:
        executor.stop()
    assert job(db, job_id).status == "queued", "stopping the executor released the job"
    assert outcomes(db, job_id) == ["lost", "released"]
