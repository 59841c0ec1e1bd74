"""What a job leaves behind: its trained model. Functions take the caller's session and never
commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import TrainedModel


def get_model(session: Session, job_id: str) -> TrainedModel | None:
    """The job's trained model (its .npz in `data`), or None while it has none."""
    return session.get(TrainedModel, job_id)


def has_model(session: Session, job_id: str) -> bool:
    """Whether the job has a trained model, read without loading the model's bytes."""
    found = session.scalar(select(TrainedModel.job_id).where(TrainedModel.job_id == job_id))
    return found is not None
