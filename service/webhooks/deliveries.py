"""Reading a job's webhook deliveries with their attempts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.store import deliveries as delivery_rows
from service.store.models import Job, WebhookDelivery, WebhookDeliveryAttempt


def of_job(session: Session, job: Job
           ) -> list[tuple[WebhookDelivery, list[WebhookDeliveryAttempt]]]:
    """Each of the job's deliveries, oldest first, with its attempts in order."""
    deliveries = delivery_rows.for_job(session, job.id)
    attempts = delivery_rows.attempts_of(session, [d.id for d in deliveries])
    return [(delivery, attempts[delivery.id]) for delivery in deliveries]
