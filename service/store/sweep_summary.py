"""A sweep's results: per-run final metrics and gaps, the best run, per-value aggregates."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

FINAL_METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


@dataclass(frozen=True)
class RunResult:
    """One run: its parameter values, status, final metrics, gaps and best test accuracy."""

    job_id: str
    parameters: dict[str, Any]
    status: str
    final: dict[str, float | None]
    accuracy_gap: float | None
    loss_gap: float | None
    best_test_accuracy: float | None
    best_test_accuracy_step: int | None


@dataclass(frozen=True)
class Aggregate:
    """n, mean, sample standard deviation (None for n < 2), min and max of some values."""

    n: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class ValueSummary:
    """One value of one swept parameter, aggregated over the runs that had it."""

    parameter: str
    value: Any
    test_accuracy: Aggregate
    accuracy_gap: Aggregate
    loss_gap: Aggregate


def run_result(job_id: str, parameters: dict[str, Any], status: str,
               latest: dict[str, float], best: tuple[float, int] | None) -> RunResult:
    """The run's final metrics (the last evaluated values) and its generalisation gaps:
    train_accuracy - test_accuracy and test_loss - train_loss."""
    final: dict[str, float | None] = {key: latest.get(key) for key in FINAL_METRICS}
    return RunResult(job_id, parameters, status, final,
                     _difference(final["train_accuracy"], final["test_accuracy"]),
                     _difference(final["test_loss"], final["train_loss"]),
                     best[0] if best else None, best[1] if best else None)


def best_run(runs: list[RunResult], metric: str, goal: str) -> RunResult | None:
    """The run with the highest (goal max) or lowest (min) final `metric`; None if no run has
    it yet. Ties go to the earliest run."""
    scored = [(run.final[metric], position, run) for position, run in enumerate(runs)
              if run.final.get(metric) is not None]
    if not scored:
        return None
    sign = -1.0 if goal == "max" else 1.0
    return min(scored, key=lambda item: (sign * float(item[0] or 0.0), item[1]))[2]


def objective_best(spec: dict[str, Any], runs: list[RunResult]) -> RunResult | None:
    """`best_run` by the objective of the sweep spec `spec` (test_accuracy, max by default)."""
    objective = spec.get("objective", {})
    return best_run(runs, objective.get("metric", "test_accuracy"), objective.get("goal", "max"))


def by_value(runs: list[RunResult], parameters: list[str]) -> list[ValueSummary]:
    """For each swept parameter and each of its values (in first-seen order), aggregates over
    the finished runs (those with a final test_accuracy) that had that value."""
    summaries: list[ValueSummary] = []
    for parameter in parameters:
        groups: dict[str, tuple[Any, list[RunResult]]] = {}
        for run in runs:
            value = run.parameters.get(parameter)
            groups.setdefault(repr(value), (value, []))[1].append(run)
        for value, members in groups.values():
            done = [run for run in members if run.final["test_accuracy"] is not None]
            summaries.append(ValueSummary(
                parameter, value,
                aggregate([run.final["test_accuracy"] for run in done]),
                aggregate([run.accuracy_gap for run in done]),
                aggregate([run.loss_gap for run in done])))
    return summaries


def aggregate(values: list[float | None]) -> Aggregate:
    """Aggregate of the finite values among `values`."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return Aggregate(0, None, None, None, None)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Aggregate(len(present), statistics.fmean(present), std, min(present), max(present))


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
