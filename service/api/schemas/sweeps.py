"""Sweep resources: SweepPublic (with runs, best run and per-value summary), SweepsPublic."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from service.store import sweep_summary as summary
from service.store.models import Sweep
from service.store.sweep_summary import RunResult


class AggregatePublic(BaseModel):
    n: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None

    @classmethod
    def of(cls, value: summary.Aggregate) -> AggregatePublic:
        return cls(n=value.n, mean=value.mean, std=value.std, min=value.min, max=value.max)


class RunPublic(BaseModel):
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

    @classmethod
    def of(cls, run: summary.RunResult) -> RunPublic:
        return cls(job_id=run.job_id, parameters=run.parameters, status=run.status,
                   train_loss=run.final["train_loss"], test_loss=run.final["test_loss"],
                   train_accuracy=run.final["train_accuracy"],
                   test_accuracy=run.final["test_accuracy"], accuracy_gap=run.accuracy_gap,
                   loss_gap=run.loss_gap, best_test_accuracy=run.best_test_accuracy,
                   best_test_accuracy_step=run.best_test_accuracy_step)


class ValueSummaryPublic(BaseModel):
    parameter: str
    value: Any
    test_accuracy: AggregatePublic
    accuracy_gap: AggregatePublic
    loss_gap: AggregatePublic


class SweepPublic(BaseModel):
    id: str
    name: str
    status: str
    spec: dict[str, Any]
    max_concurrent: int | None
    created_at: dt.datetime
    counts: dict[str, int]
    runs: list[RunPublic] | None = None
    best_run: RunPublic | None = None
    summary: list[ValueSummaryPublic] | None = None

    @classmethod
    def from_row(cls, sweep: Sweep, status: str, counts: dict[str, int],
                 runs: list[RunResult] | None = None) -> SweepPublic:
        """The sweep; with `runs`, also each run, the best by the objective and the summary."""
        public = cls(id=sweep.id, name=sweep.name, status=status, spec=sweep.spec,
                     max_concurrent=sweep.max_concurrent, created_at=sweep.created_at,
                     counts=counts)
        if runs is None:
            return public
        best = summary.objective_best(sweep.spec, runs)
        public.runs = [RunPublic.of(run) for run in runs]
        public.best_run = RunPublic.of(best) if best else None
        public.summary = [
            ValueSummaryPublic(parameter=item.parameter, value=item.value,
                               test_accuracy=AggregatePublic.of(item.test_accuracy),
                               accuracy_gap=AggregatePublic.of(item.accuracy_gap),
                               loss_gap=AggregatePublic.of(item.loss_gap))
            for item in summary.by_value(runs, list(sweep.spec.get("parameters", {})))]
        return public


class SweepsPublic(BaseModel):
    data: list[SweepPublic]
    next_cursor: str | None
