"""service.store.datasets on SQLite and PostgreSQL: add, get, page, in_use, delete."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from service.store import datasets as dataset_rows
from service.store.base import utcnow
from service.store.models import DatasetRecord, Job
from service.store.session import Database
from tests.factories import add_queued_job

DATA = b"PK\x03\x04 stands in for a stored .npz"


def add(db: Database, *, owner: str = "", name: str = "toy",
        created_at: dt.datetime | None = None) -> str:
    """A dataset row's id, committed."""
    with db.write() as session:
        record = dataset_rows.add(
            session, dataset_id=uuid.uuid4().hex, owner=owner, name=name, source_format="npz",
            n_train=30, n_test=9, input_shape=[1, 8, 8], n_classes=3, sha256="ab" * 32,
            data=DATA)
        if created_at is not None:
            record.created_at = created_at
        return record.id


def test_add_stores_every_field_and_the_size_of_the_data(db: Database) -> None:
    before = utcnow()
    dataset_id = add(db, owner="alice")
    with db.read() as session:
        record = session.get(DatasetRecord, dataset_id)
        assert record is not None
        assert (record.owner, record.name, record.source_format, record.n_train, record.n_test,
                record.input_shape, record.n_classes, record.sha256, record.data,
                record.size_bytes) == ("alice", "toy", "npz", 30, 9, [1, 8, 8], 3, "ab" * 32,
                                       DATA, len(DATA))
        assert before <= record.created_at <= utcnow()


def test_get_is_none_for_a_missing_dataset_or_another_owners(db: Database) -> None:
    dataset_id = add(db, owner="alice")
    with db.read() as session:
        assert dataset_rows.get(session, "no-such-id") is None
        assert dataset_rows.get(session, dataset_id, owner="bob") is None
        assert dataset_rows.get(session, dataset_id, owner="alice").id == dataset_id
        assert dataset_rows.get(session, dataset_id).id == dataset_id  # no owner: any


def test_get_without_data_loads_the_arrays_only_when_asked(db: Database) -> None:
    dataset_id = add(db)
    with db.read() as session:
        record = dataset_rows.get(session, dataset_id, with_data=False)
        assert "data" not in record.__dict__  # deferred: not read with the row
        assert record.data == DATA  # and loaded on access


def test_page_is_newest_first_per_owner_and_continues_after_a_row(db: Database) -> None:
    base = utcnow()
    # Two rows share a created_at: the id breaks the tie, so no row is skipped or repeated.
    times = [base - dt.timedelta(seconds=s) for s in (3, 2, 2, 1)]
    ids = [add(db, owner="alice", created_at=t) for t in times]
    add(db, owner="bob")
    expected = [ids[3], *sorted(ids[1:3], reverse=True), ids[0]]
    with db.read() as session:
        first = dataset_rows.page(session, owner="alice", before=None, limit=2)
        assert [r.id for r in first] == expected[:2]
        assert all("data" not in r.__dict__ for r in first)
        last = first[-1]
        rest = dataset_rows.page(session, owner="alice", before=(last.created_at, last.id),
                                 limit=10)
        assert [r.id for r in rest] == expected[2:]
        assert len(dataset_rows.page(session, owner=None, before=None, limit=10)) == 5


@pytest.mark.parametrize(("status", "in_use"), [
    ("queued", True), ("running", True), ("succeeded", False), ("failed", False),
    ("cancelled", False)])
def test_in_use_while_a_queued_or_running_job_trains_on_it(db: Database, status: str,
                                                          in_use: bool) -> None:
    dataset_id, unused_id = add(db), add(db)
    with db.write() as session:
        job = add_queued_job(session)
        job.dataset_id, job.status = dataset_id, status
    with db.read() as session:
        assert dataset_rows.in_use(session, dataset_id) is in_use
        assert dataset_rows.in_use(session, unused_id) is False


def test_delete_removes_the_row_and_keeps_the_jobs_that_trained_on_it(db: Database) -> None:
    dataset_id, kept_id = add(db), add(db)
    with db.write() as session:
        job = add_queued_job(session)
        job.dataset_id, job.status = dataset_id, "succeeded"
        job_id = job.id
    with db.write() as session:
        dataset_rows.delete(session, dataset_id)
    with db.read() as session:
        assert session.get(DatasetRecord, dataset_id) is None
        assert session.get(DatasetRecord, kept_id) is not None
        assert session.get(Job, job_id).dataset_id is None  # ON DELETE SET NULL


def test_class_names_are_stored_with_the_row_and_default_to_none(db: Database) -> None:
    with db.write() as session:
        named = dataset_rows.add(
            session, dataset_id=uuid.uuid4().hex, owner="", name="shapes",
            source_format="images", n_train=6, n_test=3, input_shape=[1, 28, 28],
            n_classes=3, sha256="cd" * 32, data=DATA,
            class_names=["circle", "square", "triangle"]).id
    unnamed = add(db)
    with db.read() as session:
        assert dataset_rows.get(session, named, with_data=False).class_names == [
            "circle", "square", "triangle"]
        assert dataset_rows.get(session, unnamed).class_names is None
