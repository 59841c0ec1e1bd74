"""Webhook delivery rows (the outbox), their attempts and the owners' signing secrets.

Every function takes the caller's session and never commits. A sender claims due deliveries
with a lease (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the write session's BEGIN IMMEDIATE
serialises claimers) and records each result fenced by the lease token, so two senders never
send the same attempt at once and a sender whose lease ran out writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session

from .base import utcnow
from .jobs import database_clock, lease_deadline
from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookSecret
from .statuses import DeliveryStatus


@dataclass(frozen=True)
class DeliveryClaim:
    """A delivery a sender holds: what to send, and the token that fences its result."""

    delivery_id: str
    owner: str
    url: str
    body: str
    attempt: int
    lease_token: int


def create(session: Session, *, delivery_id: str, owner: str, event_type: str, url: str,
           body: str, job_id: str | None = None, sweep_id: str | None = None
           ) -> WebhookDelivery:
    """Add a pending delivery, due at once: a job's (`job_id`) or a sweep's (`sweep_id`)."""
    delivery = WebhookDelivery(id=delivery_id, owner=owner, job_id=job_id, sweep_id=sweep_id,
                               event_type=event_type, url=url, body=body,
                               status=DeliveryStatus.PENDING, attempts=0, lease_token=0,
                               next_attempt_at=database_clock(session))
    session.add(delivery)
    return delivery


def _due(session: Session) -> ColumnElement[bool]:
    """Pending, due, and not held by a live lease (a sender that died leaves an expired one)."""
    now = database_clock(session)
    return and_(WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_expires_at.is_(None),
                    WebhookDelivery.lease_expires_at < now))


def any_due(session: Session) -> bool:
    """Whether a delivery could be claimed now (a read, so an idle sender never takes
    SQLite's write lock)."""
    return session.scalar(select(WebhookDelivery.id).where(_due(session)).limit(1)) is not None


def claim_due(session: Session, *, lease_seconds: float, limit: int) -> list[DeliveryClaim]:
    """Take up to `limit` due deliveries, oldest due first: each gets the next attempt
    number, a new lease token and an attempt row."""
    due = (select(WebhookDelivery.id).where(_due(session))
           .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
           .limit(limit).with_for_update(skip_locked=True))
    ids = list(session.scalars(due))
    if not ids:
        return []
    rows = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status == DeliveryStatus.PENDING)
        .values(attempts=WebhookDelivery.attempts + 1,
                lease_token=WebhookDelivery.lease_token + 1,
                lease_expires_at=lease_deadline(session, lease_seconds))
        .returning(WebhookDelivery.id, WebhookDelivery.owner, WebhookDelivery.url,
                   WebhookDelivery.body, WebhookDelivery.attempts, WebhookDelivery.lease_token)
    ).all()
    started = utcnow()
    claims = [DeliveryClaim(delivery_id=row[0], owner=row[1], url=row[2], body=row[3],
                            attempt=row[4], lease_token=row[5]) for row in rows]
    session.add_all(WebhookDeliveryAttempt(delivery_id=claim.delivery_id, number=claim.attempt,
                                           lease_token=claim.lease_token, started_at=started)
                    for claim in claims)
    return sorted(claims, key=lambda claim: ids.index(claim.delivery_id))


def record_attempt(session: Session, claim: DeliveryClaim, *, status_code: int | None,
                   error: str | None, duration_seconds: float,
                   retry_in_seconds: float | None, succeeded: bool) -> bool:
    """Store how `claim`'s attempt ended and what comes next: succeeded, another attempt
    `retry_in_seconds` from now (by the database's clock, as leases are), or failed for good
    (`retry_in_seconds` None). False, writing nothing, when the lease is no longer this
    sender's (it expired and another sender took over)."""
    now = utcnow()
    values: dict[str, Any] = {"next_attempt_at": None}
    if succeeded:
        status = DeliveryStatus.SUCCEEDED
        values["delivered_at"] = now
    elif retry_in_seconds is None:
        status = DeliveryStatus.FAILED
    else:
        status = DeliveryStatus.PENDING
        values["next_attempt_at"] = lease_deadline(session, retry_in_seconds)
    result = cast(CursorResult[Any], session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == claim.delivery_id,
               WebhookDelivery.lease_token == claim.lease_token,
               WebhookDelivery.status == DeliveryStatus.PENDING)
        .values(status=status, lease_expires_at=None, **values)))
    if result.rowcount != 1:
        return False
    session.execute(
        update(WebhookDeliveryAttempt)
        .where(WebhookDeliveryAttempt.delivery_id == claim.delivery_id,
               WebhookDeliveryAttempt.lease_token == claim.lease_token)
        .values(ended_at=now, status_code=status_code, error=error,
                duration_seconds=duration_seconds))
    return True


def for_job(session: Session, job_id: str) -> list[WebhookDelivery]:
    """The job's deliveries, oldest first."""
    return _oldest_first(session, WebhookDelivery.job_id == job_id)


def for_sweep(session: Session, sweep_id: str) -> list[WebhookDelivery]:
    """The sweep's own deliveries (its end; not its runs'), oldest first."""
    return _oldest_first(session, WebhookDelivery.sweep_id == sweep_id)


def _oldest_first(session: Session, which: ColumnElement[bool]) -> list[WebhookDelivery]:
    return list(session.scalars(select(WebhookDelivery).where(which)
                                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)))


def attempts_of(session: Session, delivery_ids: list[str]
                ) -> dict[str, list[WebhookDeliveryAttempt]]:
    """{delivery id: its attempts in order} for these deliveries (one query)."""
    found: dict[str, list[WebhookDeliveryAttempt]] = {delivery_id: [] for delivery_id in
                                                      delivery_ids}
    if delivery_ids:
        rows = session.scalars(select(WebhookDeliveryAttempt)
                               .where(WebhookDeliveryAttempt.delivery_id.in_(delivery_ids))
                               .order_by(WebhookDeliveryAttempt.delivery_id,
                                         WebhookDeliveryAttempt.number))
        for attempt in rows:
            found[attempt.delivery_id].append(attempt)
    return found


def count_pending(session: Session) -> int:
    """Deliveries still to be sent (due or waiting for a retry)."""
    return int(session.scalar(select(func.count()).select_from(WebhookDelivery)
                              .where(WebhookDelivery.status == DeliveryStatus.PENDING)) or 0)


def secret_of(session: Session, owner: str) -> str | None:
    """The owner's stored signing secret, or None."""
    return session.scalar(select(WebhookSecret.secret).where(WebhookSecret.owner == owner))


def set_secret(session: Session, owner: str, secret: str) -> None:
    """Store (or replace) the owner's signing secret."""
    record = session.get(WebhookSecret, owner)
    if record is None:
        session.add(WebhookSecret(owner=owner, secret=secret))
    else:
        record.secret = secret
        record.created_at = utcnow()

