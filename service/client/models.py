"""What the API answers, as the client sees it: pydantic models of the JSON resources.

Defined here, not imported from the server (the client talks HTTP only). Fields the server
adds later are ignored, so an older client keeps working against a newer server.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class Resource(BaseModel):
    """Base of every answer: immutable, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Progress(Resource):
    iteration: int
    total: int
    iterations_per_second: float | None
    eta_seconds: float | None


class Worker(Resource):
    host: str
    pid: int


class Job(Resource):
    """A job: its spec (defaults filled in), status, progress and latest metrics."""

    id: str
    name: str
    status: JobStatus
    spec: dict[str, Any]
    progress: Progress
    attempts: int
    worker: Worker | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    metrics: dict[str, float]
    cancel_requested: bool
    checkpoint_iteration: int | None
    sweep_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class JobPage(Resource):
    """One page of jobs, newest first; pass `next_cursor` back for the next (None: last)."""

    data: list[Job]
    next_cursor: str | None


class Attempt(Resource):
    number: int
    worker: Worker
    started_at: dt.datetime
    ended_at: dt.datetime | None
    outcome: str
    resumed_from_iteration: int | None


class MetricKey(Resource):
    """A recorded metric of a job: how many points, first and last step, last value."""

    key: str
    count: int
    first_step: int | None
    last_step: int | None
    last_value: float | None


class MetricPoint(Resource):
    step: int
    value: float
    timestamp: float


class MetricSeries(Resource):
    """A metric's points in step order; `downsampled` when asked with max_points."""

    key: str
    points: list[MetricPoint]
    downsampled: bool


class Prediction(Resource):
    """Classes and probabilities (n_rows, n_classes); with MC dropout (mc_samples > 0) also
    entropy and mutual_information (n_rows,) and std (n_rows, n_classes)."""

    predictions: list[int]
    probabilities: list[list[float]]
    mc_samples: int | None = None
    entropy: list[float] | None = None
    mutual_information: list[float] | None = None
    std: list[list[float]] | None = None


class Dataset(Resource):
    id: str
    name: str
    format: str
    n_train: int
    n_test: int
    input_shape: list[int]
    n_classes: int
    size_bytes: int
    sha256: str
    created_at: dt.datetime


class DatasetPage(Resource):
    data: list[Dataset]
    next_cursor: str | None


class BuiltinDatasets(Resource):
    data: list[dict[str, Any]]
    split_parameters: list[dict[str, Any]]


class Aggregate(Resource):
    n: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


class SweepRun(Resource):
    """One run of a sweep: its parameters, status and final metrics with the train/test gaps."""

    job_id: str
    parameters: dict[str, Any]
    status: str
    train_loss: float | None
    test_loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    accuracy_gap: float | None
    loss_gap: float | None
    best_test_accuracy: float | None
    best_test_accuracy_step: int | None


class ValueSummary(Resource):
    """Aggregates over the runs that share one value of one swept parameter."""

    parameter: str
    value: Any
    test_accuracy: Aggregate
    accuracy_gap: Aggregate
    loss_gap: Aggregate


class Sweep(Resource):
    """A sweep with its run counts; read one by id for runs, best run and summary too."""

    id: str
    name: str
    status: str
    spec: dict[str, Any]
    max_concurrent: int | None
    created_at: dt.datetime
    counts: dict[str, int]
    runs: list[SweepRun] | None = None
    best_run: SweepRun | None = None
    summary: list[ValueSummary] | None = None


class SweepPage(Resource):
    data: list[Sweep]
    next_cursor: str | None


class Health(Resource):
    """/readyz: `ready` when the database answers at the schema head and workers are alive;
    `checks` says what failed otherwise."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, dict[str, Any]]

    @property
    def ready(self) -> bool:
        return self.status == "ready"
