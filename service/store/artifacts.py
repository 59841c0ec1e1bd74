"""What a job leaves behind: its trained model, and while it runs its latest checkpoint.
Functions take the caller's session and never commit."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .models import Checkpoint, TrainedModel
from .upsert import upsert


def get_model(session: Session, job_id: str) -> TrainedModel | None:
    """The job's trained model (its .npz in `data`), or None while it has none."""
    return session.get(TrainedModel, job_id)


def has_model(session: Session, job_id: str) -> bool:
    """Whether the job has a trained model, read without loading the model's bytes."""
    found = session.scalar(select(TrainedModel.job_id).where(TrainedModel.job_id == job_id))
    return found is not None


def add_model(session: Session, job_id: str, data: bytes) -> None:
    """Store the finished job's model file (.npz bytes)."""
    session.add(TrainedModel(job_id=job_id, data=data, size_bytes=len(data)))


def get_checkpoint(session: Session, job_id: str) -> Checkpoint | None:
    """The job's latest checkpoint (engine checkpoint bytes in `data`), or None."""
    return session.get(Checkpoint, job_id)


def put_checkpoint(session: Session, job_id: str, iteration: int, data: bytes) -> None:
    """Replace the job's checkpoint with `data`, taken after `iteration`, in one upsert that
    does not read the previous checkpoint's bytes back first."""
    upsert(session, Checkpoint, [{"job_id": job_id, "iteration": iteration, "data": data}],
           conflict=("job_id",), update=("iteration", "data"))


def delete_checkpoint(session: Session, job_id: str) -> None:
    """Drop the job's checkpoint, if it has one."""
    session.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))
