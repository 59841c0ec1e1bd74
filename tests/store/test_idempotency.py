"""service.store.idempotency on SQLite and PostgreSQL: one record per (owner, endpoint, key)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from service.store import idempotency as idempotency_rows
from service.store.session import Database


def add(db: Database, *, owner: str = "alice", endpoint: str = "POST /v1/jobs",
        key: str = "k1", request_hash: str = "h1") -> None:
    with db.write() as session:
        idempotency_rows.add(session, owner=owner, endpoint=endpoint, key=key,
                             request_hash=request_hash, status_code=201,
                             response_body='{"id": "j1"}', location="/v1/jobs/j1")


def test_a_record_is_found_by_owner_endpoint_and_key(db: Database) -> None:
    add(db)
    with db.read() as session:
        record = idempotency_rows.get(session, owner="alice", endpoint="POST /v1/jobs",
                                      key="k1")
        assert (record.request_hash, record.status_code, record.response_body,
                record.resource_location) == ("h1", 201, '{"id": "j1"}', "/v1/jobs/j1")
        for owner, endpoint, key in [("bob", "POST /v1/jobs", "k1"),
                                     ("alice", "POST /v1/datasets", "k1"),
                                     ("alice", "POST /v1/jobs", "k2")]:
            assert idempotency_rows.get(session, owner=owner, endpoint=endpoint,
                                        key=key) is None


def test_a_second_record_under_the_same_key_conflicts_at_once(db: Database) -> None:
    add(db)
    add(db, owner="bob")  # the same key for another owner or endpoint is another record
    add(db, endpoint="POST /v1/datasets")
    with pytest.raises(IntegrityError):
        add(db, request_hash="h2")
    with db.read() as session:
        record = idempotency_rows.get(session, owner="alice", endpoint="POST /v1/jobs",
                                      key="k1")
        assert record.request_hash == "h1"  # the first one stays
