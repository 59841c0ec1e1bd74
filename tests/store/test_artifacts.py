"""service.store.artifacts on SQLite and PostgreSQL: a job's trained model."""

from __future__ import annotations

from service.store import artifacts
from service.store.models import TrainedModel
from service.store.session import Database
from tests.factories import add_queued_job

MODEL = b"stands in for a model .npz"


def test_a_jobs_model_is_found_once_stored(db: Database) -> None:
    with db.write() as session:
        trained, untrained = add_queued_job(session), add_queued_job(session)
        session.add(TrainedModel(job_id=trained.id, data=MODEL, size_bytes=len(MODEL)))
    with db.read() as session:
        assert artifacts.has_model(session, trained.id) is True
        assert artifacts.get_model(session, trained.id).data == MODEL
        assert artifacts.has_model(session, untrained.id) is False
        assert artifacts.get_model(session, untrained.id) is None
        assert artifacts.has_model(session, "no-such-job") is False
