"""Reading a job's or a sweep's webhook deliveries with their attempts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.store import deliveries as delivery_rows
from service.store.models import Job, Sweep, WebhookDelivery, WebhookDeliveryAttempt


def of_job(session: Session, job: Job
           ) -> list[tuple[WebhookDelivery, list[WebhookDeliveryAttempt]]]:
    """Each of the job's deliveries, oldest first, with its attempts in order."""
    return _with_attempts(session, delivery_rows.for_job(session, job.id))


def of_sweep(session: Session, sweep: Sweep
             ) -> list[tuple[WebhookDelivery, list[WebhookDeliveryAttempt]]]:
    """The sweep's own deliveries (at most one: its end), with their attempts in order."""
    return _with_attempts(session, delivery_rows.for_sweep(session, sweep.id))


def _with_attempts(session: Session, deliveries: list[WebhookDelivery]
                   ) -> list[tuple[WebhookDelivery, list[WebhookDeliveryAttempt]]]:
    attempts = delivery_rows.attempts_of(session, [d.id for d in deliveries])
    return [(delivery, attempts[delivery.id]) for delivery in deliveries]
