"""Webhook delivery resources: DeliveryPublic (with its attempts), DeliveriesPublic."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from service.store.models import WebhookDelivery, WebhookDeliveryAttempt
from service.store.statuses import DeliveryStatus
from service.webhooks.outbox import message_id


class DeliveryAttemptPublic(BaseModel):
    number: int
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status_code: int | None
    error: str | None
    duration_seconds: float | None

    @classmethod
    def from_row(cls, attempt: WebhookDeliveryAttempt) -> DeliveryAttemptPublic:
        return cls(number=attempt.number, started_at=attempt.started_at,
                   ended_at=attempt.ended_at, status_code=attempt.status_code,
                   error=attempt.error, duration_seconds=attempt.duration_seconds)


class DeliveryPublic(BaseModel):
    id: str
    webhook_id: str
    event_type: str
    url: str
    status: DeliveryStatus
    attempts: list[DeliveryAttemptPublic]
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None

    @classmethod
    def from_row(cls, delivery: WebhookDelivery,
                 attempts: list[WebhookDeliveryAttempt]) -> DeliveryPublic:
        return cls(id=delivery.id, webhook_id=message_id(delivery.id),
                   event_type=delivery.event_type, url=delivery.url, status=delivery.status,
                   attempts=[DeliveryAttemptPublic.from_row(a) for a in attempts],
                   next_attempt_at=delivery.next_attempt_at, created_at=delivery.created_at,
                   delivered_at=delivery.delivered_at)


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
