"""Small builders for test data: specs, queued jobs and dataset uploads."""

from __future__ import annotations

import copy
import datetime as dt
import io
import uuid
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.store import jobs as job_rows
from service.store.models import Job
from service.store.session import Database

DIGITS_SPEC: dict[str, Any] = {
    "name": "digits-mlp",
    "model": {"input_shape": [64],
              "layers": [{"type": "dense", "units": 32, "activation": "relu"},
                         {"type": "dropout", "rate": 0.5},
                         {"type": "dense", "units": 10, "activation": "softmax"}]},
    "data": {"dataset": "digits", "test_fraction": 0.25},
    "training": {"iterations": 60, "batch_size": 32, "seed": 0, "eval_every": 20,
                 "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
                 "dropout_schedule": {"type": "step", "every": 20, "delta": -0.1, "min": 0.1}},
}


def spec(**training: Any) -> dict[str, Any]:
    """The small digits spec, with training fields overridden."""
    result = copy.deepcopy(DIGITS_SPEC)
    result["training"].update(training)
    return result


def add_queued_job(session: Session, *, owner: str = "", created_at: dt.datetime | None = None,
                   spec_: dict[str, Any] | None = None) -> Job:
    """A queued job whose spec is stored as submission stores it (the server's default
    checkpoint intervals written in), without submission's other checks."""
    from service.config import Settings
    from service.jobs.specs import JobSpec

    defaults = Settings(_env_file=None)
    accepted = JobSpec.model_validate(spec_ or DIGITS_SPEC).with_checkpoint_defaults(
        defaults.checkpoint_every_iterations, defaults.checkpoint_every_seconds)
    job = Job(id=uuid.uuid4().hex, owner=owner, name=accepted.name, status="queued",
              spec=accepted.stored(), total_iterations=accepted.training.iterations,
              latest_metrics={})
    if created_at is not None:
        job.created_at = created_at
    session.add(job)
    session.flush()
    return job


def dataset_npz(n_train: int = 30, n_test: int = 9, *, features: int = 4, classes: int = 3,
                seed: int = 0, compress: bool = False) -> bytes:
    """An uploadable .npz: x_train (n_train, features), x_test (n_test, features) standard
    normal, labels cycling through `classes`."""
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.standard_normal((n_train, features)),
              "y_train": np.arange(n_train) % classes,
              "x_test": rng.standard_normal((n_test, features)),
              "y_test": np.arange(n_test) % classes}
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    return buffer.getvalue()


TEST_WORKER = job_rows.WorkerIdentity(id="w1", host="host-a", pid=101)


def claimed_job(db: Database, lease_seconds: float = 30.0,
                worker: job_rows.WorkerIdentity = TEST_WORKER) -> job_rows.Claim:
    """A new queued job, claimed by `worker` with a lease of `lease_seconds`."""
    with db.write() as session:
        add_queued_job(session)
    with db.write() as session:
        claim = job_rows.claim(session, worker, lease_seconds=lease_seconds)
    assert claim is not None
    return claim
