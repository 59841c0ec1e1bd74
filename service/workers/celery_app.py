"""The Celery application: one task, a thin wrapper around JobRunner.run(job_id).

Settings for hour-long CPU-bound tasks: acks late and reject on worker loss (a message is only
acknowledged once its task ended), prefetch 1 (a busy worker holds no other messages), JSON
only, and a broker visibility timeout longer than the task time limit, so the broker never
hands a still-running task to a second worker. Even so, the jobs table decides: a duplicate
delivery finds the job claimed and does nothing.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from service.config import Settings

TASK_NAME = "dropnet.run_job"
QUEUE = "dropnet"


def make_celery(settings: Settings) -> Celery:
    app = Celery("dropnet", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_time_limit=settings.celery_task_time_limit,
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout},
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


def enqueue(app: Celery, job_id: str) -> None:
    """Ring the doorbell for `job_id` (after the commit that queued it)."""
    app.send_task(TASK_NAME, args=[job_id], queue=QUEUE)


def register_task(app: Celery, run: Any) -> None:
    """Bind the task name to `run(job_id, or_oldest=True)` (the worker's JobRunner.run): a
    doorbell whose job is no longer queued starts the oldest queued job instead."""

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def run_job(job_id: str) -> None:
        run(job_id, or_oldest=True)
