"""Idempotency-Key records: the first response to a request, by (owner, endpoint, key).
Functions take the caller's session and never commit."""

from __future__ import annotations

from sqlalchemy.orm import Session

from .models import IdempotencyRecord


def get(session: Session, *, owner: str, endpoint: str, key: str) -> IdempotencyRecord | None:
    """The record stored under the key, or None."""
    return session.get(IdempotencyRecord, (owner, endpoint, key))


def add(session: Session, *, owner: str, endpoint: str, key: str, request_hash: str,
        status_code: int, response_body: str, location: str | None) -> None:
    """Store the response (`response_body` as JSON text) under the key, flushed at once: an
    IntegrityError here means another transaction stored one under the same key first."""
    session.add(IdempotencyRecord(owner=owner, endpoint=endpoint, key=key,
                                  request_hash=request_hash, status_code=status_code,
                                  response_body=response_body, resource_location=location))
    session.flush()
