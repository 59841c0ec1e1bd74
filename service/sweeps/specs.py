"""The sweep spec: what a client POSTs to /v1/sweeps, validated field by field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from service.engine.datasets import MAX_SEED
from service.jobs.specs import JobName, JobSpec, StrictModel

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
    `random` draws `samples` runs (seeded) from lists or distributions.
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

    @model_validator(mode="after")
    def _method_fits(self) -> SweepCreate:
        if self.method == "random" and self.samples is None:
            raise ValueError("samples: a random sweep needs `samples` (how many runs to draw)")
        if self.method == "grid" and self.samples is not None:
            raise ValueError("samples: only a random sweep takes `samples`")
        if self.method == "grid":
            drawn = [path for path, values in self.parameters.items()
                     if not isinstance(values, list)]
            if drawn:
                raise ValueError(f"parameters.{drawn[0]}: a grid sweep takes lists of values; "
                                 "distributions need method random")
        for path, values in self.parameters.items():
            if isinstance(values, (Uniform, LogUniform)):
                low, high = values.uniform if isinstance(values, Uniform) else values.log_uniform
                if not low <= high or (isinstance(values, LogUniform) and low <= 0):
                    raise ValueError(f"parameters.{path}: expected bounds [a, b] with a <= b"
                                     f"{' and a > 0' if isinstance(values, LogUniform) else ''}"
                                     f", received {[low, high]}")
            if isinstance(values, IntRange) and values.int_[0] > values.int_[1]:
                raise ValueError(f"parameters.{path}: expected bounds [a, b] with a <= b, "
                                 f"received {values.int_}")
        return self
