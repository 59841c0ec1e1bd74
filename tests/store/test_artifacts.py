"""service.store.artifacts on SQLite and PostgreSQL: a job's trained model and its checkpoint."""

from __future__ import annotations

from service.store import artifacts
from service.store.session import Database
from tests.factories import add_queued_job

MODEL = b"stands in for a model .npz"


def test_a_jobs_model_is_found_once_stored(db: Database) -> None:
    with db.write() as session:
        trained, untrained = add_queued_job(session), add_queued_job(session)
        artifacts.add_model(session, trained.id, MODEL)
    with db.read() as session:
        assert artifacts.has_model(session, trained.id) is True
        model = artifacts.get_model(session, trained.id)
        assert model is not None and (model.data, model.size_bytes) == (MODEL, len(MODEL))
        assert artifacts.has_model(session, untrained.id) is False
        assert artifacts.get_model(session, untrained.id) is None
        assert artifacts.has_model(session, "no-such-job") is False


def test_a_checkpoint_is_replaced_then_deleted(db: Database) -> None:
    with db.write() as session:
        job_id, other = add_queued_job(session).id, add_queued_job(session).id
        artifacts.put_checkpoint(session, job_id, 10, b"state at 10")
        artifacts.put_checkpoint(session, other, 3, b"other job")
    with db.write() as session:
        artifacts.put_checkpoint(session, job_id, 20, b"state at 20")
    with db.read() as session:
        checkpoint = artifacts.get_checkpoint(session, job_id)
        assert checkpoint is not None
        assert (checkpoint.iteration, checkpoint.data) == (20, b"state at 20")
    with db.write() as session:
        artifacts.delete_checkpoint(session, job_id)
        artifacts.delete_checkpoint(session, job_id)  # none left: nothing happens
    with db.read() as session:
        assert artifacts.get_checkpoint(session, job_id) is None
        assert artifacts.get_checkpoint(session, other).data == b"other job"
