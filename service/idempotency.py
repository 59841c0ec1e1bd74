"""Idempotency-Key: a repeated request (same key, same body) gets the first response again.

The key is stored with the response in the transaction that creates the resource, so two
concurrent identical requests create one resource: on SQLite the second waits for the write
lock and then finds the key; on PostgreSQL its insert conflicts and it replays.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import ErrorDetail, InvalidInput
from .store.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any
    location: str | None


def request_hash(payload: Any) -> str:
    if isinstance(payload, bytes):
        return hashlib.sha256(payload).hexdigest()
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput("invalid Idempotency-Key", [ErrorDetail(
            "Idempotency-Key", "must be 1 to 255 printable characters", type="header",
            received=key[:50])])
    return key


def lookup(session: Session, *, owner: str, endpoint: str, key: str,
           digest: str) -> StoredResponse | None:
    """The stored response for this key, or None. A different body under the key is an error."""
    record = session.get(IdempotencyRecord, (owner, endpoint, key))
    if record is None:
        return None
    if record.request_hash != digest:
        raise InvalidInput("Idempotency-Key reused with a different request", [ErrorDetail(
            "Idempotency-Key", "this key was first used with another request body; use a new "
            "key for a new request", type="idempotency_mismatch", received=key)])
    return StoredResponse(record.status_code or 200, json.loads(record.response_body or "null"),
                          record.resource_location)


def remember_or_replay(session: Session, *, owner: str, endpoint: str, key: str, digest: str,
                       response: StoredResponse) -> StoredResponse | None:
    """Remember `response` under the key and return None (the caller then commits), or, when
    a concurrent identical request remembered its own first, roll this transaction back and
    return that response to replay."""
    try:
        remember(session, owner=owner, endpoint=endpoint, key=key, digest=digest,
                 response=response)
        return None
    except IntegrityError:
        session.rollback()
        stored = lookup(session, owner=owner, endpoint=endpoint, key=key, digest=digest)
        if stored is None:
            raise
        return stored


def remember(session: Session, *, owner: str, endpoint: str, key: str, digest: str,
             response: StoredResponse) -> None:
    session.add(IdempotencyRecord(owner=owner, endpoint=endpoint, key=key, request_hash=digest,
                                  status_code=response.status_code,
                                  response_body=json.dumps(response.body, default=str),
                                  resource_location=response.location))
    session.flush()
