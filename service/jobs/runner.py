"""JobRunner: runs one job, whatever executes it (a local worker process or a Celery task).

claim (atomic, with a lease) -> load spec, data and the last checkpoint -> discard metric rows a
lost attempt wrote after that checkpoint -> train, writing metrics, progress and checkpoints in
fenced batches while the Lease renews itself -> store the model and the terminal status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from service.config import Settings
from service.engine.checkpoint import save_model
from service.engine.errors import NonFiniteLossError
from service.engine.network import build_network
from service.engine.training import MetricRecord, Trainer, TrainingConfig
from service.store import artifacts
from service.store import jobs as job_rows
from service.store import metrics as metric_rows
from service.store.availability import Unavailable, unavailable
from service.store.session import Database
from service.store.statuses import AttemptOutcome, JobStatus
from service.telemetry import JOBS_ENDED
from service.webhooks import outbox

from . import data as job_data
from .lease import Lease, LeaseLost
from .specs import JobSpec
from .writer import MetricWriter, store_checkpoint

log = logging.getLogger(__name__)


class RunOutcome(StrEnum):
    """How JobRunner.run left the job: in a terminal status, given back to the queue, no
    longer this runner's (its lease was lost: whoever holds it now decides), or interrupted
    by an unavailable database (its lease expires and the reaper requeues it)."""

    SUCCEEDED = JobStatus.SUCCEEDED.value
    FAILED = JobStatus.FAILED.value
    CANCELLED = JobStatus.CANCELLED.value
    QUEUED = JobStatus.QUEUED.value
    LEASE_LOST = "lease_lost"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RunResult:
    job_id: str
    status: RunOutcome
    iteration: int
    error: str | None = None


class JobRunner:
    """Claims and runs jobs for one worker identity."""

    def __init__(self, db: Database, settings: Settings, worker: job_rows.WorkerIdentity, *,
                 shutdown: threading.Event | None = None,
                 on_requeue: Callable[[str], None] | None = None) -> None:
        self.db = db
        self.settings = settings
        self.worker = worker
        self.shutdown = shutdown or threading.Event()
        self.on_requeue = on_requeue

    def run(self, job_id: str | None = None, *, or_oldest: bool = False) -> RunResult | None:
        """Claim job `job_id` (or the oldest queued job) and run it to the end.

        With `or_oldest`, a `job_id` that is no longer queued (it runs elsewhere, has finished,
        or another doorbell already started it) falls back to the oldest queued job: a Celery
        doorbell then never goes to waste while another job's doorbell was lost.
        Returns None when there was nothing to claim.
        """
        claim = self._claim(job_id)
        if claim is None and job_id is not None and or_oldest:
            claim = self._claim(None)
        if claim is None:
            return None
        log.info("claimed job %s (attempt %d)", claim.job_id, claim.attempt,
                 extra={"job_id": claim.job_id})
        with Lease(self.db, claim, lease_seconds=self.settings.lease_seconds,
                   interval=self.settings.heartbeat_seconds) as lease:
            try:
                return self._execute(claim, lease)
            except SQLAlchemyError as error:  # e.g. the final write when the database went away
                if unavailable(error) is None:
                    raise
                return self._interrupted(claim, error, iteration=0)

    def _claim(self, job_id: str | None) -> job_rows.Claim | None:
        with self.db.write() as session:
            return job_rows.claim(session, self.worker,
                                  lease_seconds=self.settings.lease_seconds, job_id=job_id)

    def _execute(self, claim: job_rows.Claim, lease: Lease) -> RunResult:
        try:
            trainer, writer, policy, metadata = self._prepare(claim, lease)
        except LeaseLost:
            return RunResult(claim.job_id, RunOutcome.LEASE_LOST, 0)
        except Exception as error:  # bad data or an engine refusal: the job fails, not the worker
            if unavailable(error) is not None:
                return self._database_failed(claim, error, 0)
            log.exception("job %s could not start", claim.job_id)
            return self._finish(claim, job_rows.FAILED, 0, f"{type(error).__name__}: {error}")

        def should_stop() -> bool:
            return self.shutdown.is_set() or lease.should_stop()

        def on_metrics(records: list[MetricRecord]) -> None:
            if lease.lost:
                raise LeaseLost(claim.job_id)
            state = trainer.checkpoint() if policy.due(trainer.iteration) else None
            writer.flush(records, iteration=trainer.iteration, checkpoint=state)
            if state is not None:
                policy.taken(trainer.iteration)

        try:
            status = trainer.run(on_metrics=on_metrics, should_stop=should_stop,
                                 flush_seconds=self.settings.heartbeat_seconds,
                                 flush_every=policy.every_iterations)
        except LeaseLost:
            log.warning("job %s: lease lost, stopping without further writes", claim.job_id)
            return RunResult(claim.job_id, RunOutcome.LEASE_LOST, trainer.iteration)
        except NonFiniteLossError as error:
            return self._finish(claim, job_rows.FAILED, trainer.iteration, str(error))
        except Exception as error:
            if unavailable(error) is not None:
                return self._database_failed(claim, error, trainer.iteration)
            log.exception("job %s failed", claim.job_id)
            return self._finish(claim, job_rows.FAILED, trainer.iteration,
                                f"{type(error).__name__}: {error}")
        if status == "completed":
            model = save_model(trainer.network, metadata=metadata)
            return self._finish(claim, job_rows.SUCCEEDED, trainer.iteration, model=model)
        if lease.lost:
            return RunResult(claim.job_id, RunOutcome.LEASE_LOST, trainer.iteration)
        if lease.cancel_requested:
            return self._finish(claim, job_rows.CANCELLED, trainer.iteration)
        return self._release(claim, lease, trainer)

    def _prepare(self, claim: job_rows.Claim, lease: Lease
                 ) -> tuple[Trainer, MetricWriter, CheckpointPolicy, dict[str, Any]]:
        """The trainer, metric writer and checkpoint policy of the claimed job, and the
        metadata its trained model file will carry (job_id; class_names when its data names
        its classes)."""
        with self.db.read() as session:
            job = job_rows.get(session, claim.job_id)
            if job is None:
                raise LeaseLost(claim.job_id)
            spec = JobSpec.model_validate(job.spec)
            checkpoint = artifacts.get_checkpoint(session, claim.job_id)
            dataset = job_data.load(session, spec.data, input_shape=spec.model.input_shape,
                                    dtype=spec.model.dtype)
            state = None if checkpoint is None else (checkpoint.iteration, checkpoint.data)
            latest = dict(job.latest_metrics or {})
        network = build_network(spec.engine_layers(), spec.model.input_shape,
                                seed=spec.training.seed, dtype=spec.model.dtype)
        config = TrainingConfig.from_dict(spec.engine_training())
        trainer = Trainer(network, dataset, config,
                          checkpoint=None if state is None else state[1])
        start = 0 if state is None else state[0]
        with self.db.write() as session:
            # Rows a lost attempt wrote after the checkpoint are replayed bit for bit below.
            lease.renew(session, {"iteration": start})
            metric_rows.delete_after(session, claim.job_id, start)
        writer = MetricWriter(self.db, lease, start_iteration=start,
                              latest=latest if state is not None else None)
        every_iterations, every_seconds = spec.training.checkpoint.intervals()
        policy = CheckpointPolicy(every_iterations=every_iterations, every_seconds=every_seconds,
                                  last_iteration=start)
        metadata: dict[str, Any] = {"job_id": claim.job_id}
        if dataset.class_names is not None:
            metadata["class_names"] = list(dataset.class_names)
        return trainer, writer, policy, metadata

    def _finish(self, claim: job_rows.Claim, status: JobStatus, iteration: int,
                error: str | None = None, *, model: bytes | None = None) -> RunResult:
        with self.db.write() as session:
            done = job_rows.finish(session, claim, status=status, error=error,
                                   iteration=iteration)
            if done:
                if model is not None:
                    artifacts.add_model(session, claim.job_id, model)
                artifacts.delete_checkpoint(session, claim.job_id)
                outbox.record_job_ends(session, [claim.job_id])
        if not done:
            return RunResult(claim.job_id, RunOutcome.LEASE_LOST, iteration)
        JOBS_ENDED.labels(status).inc()
        log.info("job %s %s at iteration %d", claim.job_id, status, iteration,
                 extra={"job_id": claim.job_id})
        return RunResult(claim.job_id, RunOutcome(status), iteration, error)

    def _database_failed(self, claim: job_rows.Claim, error: Exception,
                         iteration: int) -> RunResult:
        """A database that cannot serve never fails a job for good: while it is unreachable the
        attempt stops writing and its lease expires (the reaper requeues the job, which resumes
        from its checkpoint); a full disk fails the job with that cause, if that write fits."""
        if unavailable(error) is not Unavailable.FULL:
            return self._interrupted(claim, error, iteration)
        message = (f"the database's disk is full: training stopped at iteration {iteration}; "
                   f"everything stored before that is kept ({type(error).__name__}: "
                   f"{str(error).splitlines()[0]})")
        log.error("job %s: %s", claim.job_id, message, extra={"job_id": claim.job_id})
        try:
            return self._finish(claim, job_rows.FAILED, iteration, message)
        except SQLAlchemyError as again:
            return self._interrupted(claim, again, iteration)

    def _interrupted(self, claim: job_rows.Claim, error: Exception,
                     iteration: int) -> RunResult:
        log.warning("job %s: the database is unavailable (%s); the attempt stops and its lease "
                    "will expire, so the job is requeued", claim.job_id,
                    str(error).splitlines()[0], extra={"job_id": claim.job_id})
        return RunResult(claim.job_id, RunOutcome.INTERRUPTED, iteration,
                         str(error).splitlines()[0])

    def _release(self, claim: job_rows.Claim, lease: Lease, trainer: Trainer) -> RunResult:
        """Shutdown: store a checkpoint and give the job back to the queue."""
        state = trainer.checkpoint()
        try:
            with self.db.write() as session:
                lease.renew(session, {"iteration": trainer.iteration})
                store_checkpoint(session, claim.job_id, trainer.iteration, state)
                job_rows.release(session, claim)
        except LeaseLost:
            return RunResult(claim.job_id, RunOutcome.LEASE_LOST, trainer.iteration)
        JOBS_ENDED.labels(AttemptOutcome.RELEASED).inc()
        log.info("job %s released at iteration %d for requeue", claim.job_id, trainer.iteration,
                 extra={"job_id": claim.job_id})
        if self.on_requeue is not None:
            self.on_requeue(claim.job_id)
        return RunResult(claim.job_id, RunOutcome.QUEUED, trainer.iteration)


@dataclass
class CheckpointPolicy:
    """Checkpoint every `every_iterations` iterations or `every_seconds` seconds."""

    every_iterations: int
    every_seconds: float
    last_iteration: int
    last_time: float = 0.0

    def __post_init__(self) -> None:
        self.last_time = time.monotonic()

    def due(self, iteration: int) -> bool:
        if iteration <= self.last_iteration:
            return False
        return (iteration - self.last_iteration >= self.every_iterations
                or time.monotonic() - self.last_time >= self.every_seconds)

    def taken(self, iteration: int) -> None:
        self.last_iteration = iteration
        self.last_time = time.monotonic()
