"""Idempotency-Key: a repeated request (same key, same body) gets the first response again.

The key is stored with the response in the transaction that creates the resource, so two
concurrent identical requests create one resource: on SQLite the second waits for the write
lock and then finds the key; on PostgreSQL its insert conflicts and it replays. `create_once`
is that whole sequence; the records themselves are in service.store.idempotency.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import ErrorDetail, InvalidInput
from .store import idempotency as idempotency_rows

MAX_KEY_LENGTH = 255

Resource = TypeVar("Resource")


@dataclass(frozen=True)
class StoredResponse:
    """The first response to a request: what a replay sends again."""

    status_code: int
    body: Any
    location: str | None

    @property
    def headers(self) -> dict[str, str]:
        """{"Location": location} when the response names one."""
        return {"Location": self.location} if self.location else {}


@dataclass(frozen=True)
class IdempotentRequest:
    """A request made under an Idempotency-Key: whose, to which endpoint, and its hash."""

    owner: str
    endpoint: str
    key: str
    digest: str


def request_hash(payload: Any) -> str:
    """SHA-256 (hex) of the bytes, or of any other payload as canonical JSON (keys sorted)."""
    if isinstance(payload, bytes):
        return hashlib.sha256(payload).hexdigest()
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    """The key, when it is 1 to 255 printable characters; else InvalidInput (422)."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput("invalid Idempotency-Key", [ErrorDetail(
            "Idempotency-Key", "must be 1 to 255 printable characters", type="header",
            received=key[:50])])
    return key


def keyed(owner: str, endpoint: str, key: str | None,
          payload: Callable[[], Any]) -> IdempotentRequest | None:
    """The request under the Idempotency-Key header's value `key` (checked), hashing what
    `payload()` returns (see request_hash); None when the request has no key, and then
    `payload` is not called."""
    if key is None:
        return None
    return IdempotentRequest(owner, endpoint, check_key(key), request_hash(payload()))


def create_once(session: Session, request: IdempotentRequest | None,
                create: Callable[[], Resource],
                respond: Callable[[Resource], StoredResponse]) -> Resource | StoredResponse:
    """Create a resource at most once per Idempotency-Key, and commit.

    Without a key: `create()` in the session, commit, and return the resource. With one: the
    stored first response when the key was used before (InvalidInput when it was used for
    another request), else `create()`, remember `respond(resource)` under the key and commit;
    when a concurrent identical request remembered its own first, this transaction is rolled
    back and that request's response returned instead. A StoredResponse is for the caller to
    replay; anything `create` raises leaves the key unused.
    """
    if request is not None:
        stored = lookup(session, request)
        if stored is not None:
            return stored
    resource = create()
    if request is not None:
        stored = _remember_or_replay(session, request, respond(resource))
        if stored is not None:  # a concurrent identical request won the race
            return stored
    session.commit()
    return resource


def lookup(session: Session, request: IdempotentRequest) -> StoredResponse | None:
    """The stored response for the request's key, or None. A different request under the key
    is InvalidInput (422)."""
    record = idempotency_rows.get(session, owner=request.owner, endpoint=request.endpoint,
                                  key=request.key)
    if record is None:
        return None
    if record.request_hash != request.digest:
        raise InvalidInput("Idempotency-Key reused with a different request", [ErrorDetail(
            "Idempotency-Key", "this key was first used with another request body; use a new "
            "key for a new request", type="idempotency_mismatch", received=request.key)])
    return StoredResponse(record.status_code or 200, json.loads(record.response_body or "null"),
                          record.resource_location)


def _remember_or_replay(session: Session, request: IdempotentRequest,
                        response: StoredResponse) -> StoredResponse | None:
    """Remember `response` under the key and return None (the caller then commits), or, when
    a concurrent identical request remembered its own first, roll this transaction back and
    return that response to replay."""
    try:
        idempotency_rows.add(session, owner=request.owner, endpoint=request.endpoint,
                             key=request.key, request_hash=request.digest,
                             status_code=response.status_code,
                             response_body=json.dumps(response.body, default=str),
                             location=response.location)
        return None
    except IntegrityError:
        session.rollback()
        stored = lookup(session, request)
        if stored is None:
            raise
        return stored
