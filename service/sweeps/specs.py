"""The sweep spec: what a client POSTs to /v1/sweeps, validated field by field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from service.engine.datasets import MAX_SEED
from service.jobs.specs import JobName, JobSpec, NotifySpec, StrictModel

MAX_VALUES = 1024
PATH_PATTERN = r"^[a-z_][a-z0-9_]*(\[[0-9]{1,4}\])?(\.[a-z_][a-z0-9_]*(\[[0-9]{1,4}\])?){0,7}$"

Scalar = bool | int | float | str | None
Bounds = Annotated[list[float], Field(min_length=2, max_length=2)]


class Uniform(StrictModel):
    """Random search: a float drawn uniformly from [a, b]."""

    uniform: Bounds


class LogUniform(StrictModel):
    """Random search: exp of a float drawn uniformly from [log a, log b] (a, b > 0)."""

    log_uniform: Bounds


class IntRange(StrictModel):
    """Random search: an integer drawn uniformly from a..b inclusive."""

    int_: Annotated[list[int], Field(min_length=2, max_length=2, alias="int")]


Distribution = Uniform | LogUniform | IntRange
Values = Annotated[list[Scalar], Field(min_length=1, max_length=MAX_VALUES)]
ParameterPath = Annotated[str, StringConstraints(pattern=PATH_PATTERN, max_length=200)]


class Objective(StrictModel):
    metric: Literal["test_accuracy", "test_loss", "train_accuracy", "train_loss"] = \
        "test_accuracy"
    goal: Literal["max", "min"] = "max"


class SweepCreate(StrictModel):
    """A sweep: runs generated from `base` by setting each parameter path to its values.

    A path addresses a job-spec field (`model.layers[1].rate`, `training.seed`); `dropout.rate`
    sets the rate of every dropout layer. `grid` takes every combination of the value lists;
    `random` draws `samples` runs (seeded) from lists or distributions. The rules across
    fields are in service.sweeps.expansion.problems. `notify` is a job's notify, sent once
    when the sweep ends, with the sweep's status as the event.
    """

    name: JobName
    base: JobSpec
    parameters: Annotated[dict[ParameterPath, Values | Distribution],
                          Field(min_length=1, max_length=16)]
    method: Literal["grid", "random"] = "grid"
    samples: Annotated[int, Field(ge=1, le=100_000)] | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    max_concurrent: Annotated[int, Field(ge=1, le=100_000)] | None = None
    objective: Objective = Objective()
    notify: NotifySpec | None = Field(
        None, description="a webhook when the sweep ends, i.e. its last run does (see the "
                          "README's Webhooks section)")
