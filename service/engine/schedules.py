"""Learning-rate and dropout-rate schedules: pure functions of the iteration.

`t` is the number of completed iterations, so iteration 1 trains with the value at t = 0;
schedule state is therefore just the iteration count (a checkpoint restores it exactly).

Learning rate (base = the optimizer's learning_rate, T = total iterations):
    constant  lr(t) = base
    step      lr(t) = base * gamma ** floor(t / every)
    cosine    lr(t) = min + (base - min) * (1 + cos(pi * min(t, T) / T)) / 2

Dropout rate, applied to every dropout layer (dropout, spatial_dropout2d, gaussian_dropout):
    constant  each layer keeps its configured rate
    step      relative: rate_i(t) = clamp(rate_i + delta * floor(t / every), min, max), where
              rate_i is layer i's configured rate (its value at iteration 0). The seed's
              schedule is {"type": "step", "every": N, "delta": -0.1, "min": 0.1}.
    linear    absolute: every layer's rate goes from `from` to `to` over `iterations`
              (default T) and stays at `to` afterwards:
              rate(t) = from + (to - from) * min(t, iterations) / iterations
    curriculum  relative (Morerio et al. 2017): each layer's rate rises from 0 towards its
              configured rate, rate_i(t) = rate_i * (1 - exp(-gamma * t)), gamma > 0; the
              paper's choice is gamma = 10 / T (within 0.005 % of the rate by the end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import validation
from .errors import SpecError
from .specs import call_with_spec

LR_SCHEDULES = ("constant", "step", "cosine")
DROPOUT_SCHEDULES = ("constant", "step", "linear", "curriculum")


@dataclass(frozen=True)
class ConstantLearningRate:
    def __call__(self, t: int, base: float, total: int) -> float:
        return base

    def config(self) -> dict[str, Any]:
        return {"type": "constant"}


@dataclass(frozen=True)
class StepLearningRate:
    every: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        validation.integer(self.every, "every", minimum=1)
        validation.number(self.gamma, "gamma", exclusive_minimum=0.0, maximum=1.0)

    def __call__(self, t: int, base: float, total: int) -> float:
        return base * self.gamma ** (t // self.every)

    def config(self) -> dict[str, Any]:
        return {"type": "step", "every": self.every, "gamma": self.gamma}


@dataclass(frozen=True)
class CosineLearningRate:
    min_learning_rate: float = 0.0

    def __post_init__(self) -> None:
        validation.number(self.min_learning_rate, "min_learning_rate", minimum=0.0)

    def __call__(self, t: int, base: float, total: int) -> float:
        progress = min(t, total) / max(total, 1)
        low = min(self.min_learning_rate, base)
        return low + (base - low) * (1.0 + math.cos(math.pi * progress)) / 2.0

    def config(self) -> dict[str, Any]:
        return {"type": "cosine", "min_learning_rate": self.min_learning_rate}


@dataclass(frozen=True)
class ConstantDropout:
    def __call__(self, t: int, base_rate: float, total: int) -> float:
        return base_rate

    def config(self) -> dict[str, Any]:
        return {"type": "constant"}


@dataclass(frozen=True)
class StepDropout:
    every: int
    delta: float
    min: float = 0.0
    max: float = 0.95

    def __post_init__(self) -> None:
        validation.integer(self.every, "every", minimum=1)
        validation.number(self.delta, "delta", minimum=-1.0, maximum=1.0)
        validation.number(self.min, "min", minimum=0.0, exclusive_maximum=1.0)
        validation.number(self.max, "max", minimum=0.0, exclusive_maximum=1.0)
        if self.min > self.max:
            raise SpecError("min must not exceed max", field="min",
                            expected=f"a value <= max ({self.max})", received=self.min)

    def __call__(self, t: int, base_rate: float, total: int) -> float:
        rate = base_rate + self.delta * (t // self.every)
        return min(max(rate, self.min), self.max)

    def config(self) -> dict[str, Any]:
        return {"type": "step", "every": self.every, "delta": self.delta, "min": self.min,
                "max": self.max}


@dataclass(frozen=True)
class LinearDropout:
    start: float
    end: float
    iterations: int | None = None

    def __post_init__(self) -> None:
        validation.number(self.start, "from", minimum=0.0, exclusive_maximum=1.0)
        validation.number(self.end, "to", minimum=0.0, exclusive_maximum=1.0)
        if self.iterations is not None:
            validation.integer(self.iterations, "iterations", minimum=1)

    def __call__(self, t: int, base_rate: float, total: int) -> float:
        span = self.iterations or max(total, 1)
        return self.start + (self.end - self.start) * min(t, span) / span

    def config(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": "linear", "from": self.start, "to": self.end}
        if self.iterations is not None:
            spec["iterations"] = self.iterations
        return spec


@dataclass(frozen=True)
class CurriculumDropout:
    gamma: float

    def __post_init__(self) -> None:
        validation.number(self.gamma, "gamma", exclusive_minimum=0.0)

    def __call__(self, t: int, base_rate: float, total: int) -> float:
        return base_rate * -math.expm1(-self.gamma * t)

    def config(self) -> dict[str, Any]:
        return {"type": "curriculum", "gamma": self.gamma}


LearningRateSchedule = ConstantLearningRate | StepLearningRate | CosineLearningRate
DropoutSchedule = ConstantDropout | StepDropout | LinearDropout | CurriculumDropout


def build_lr_schedule(spec: dict[str, Any] | None) -> LearningRateSchedule:
    """A learning-rate schedule from {"type": "step", "every": 1000, "gamma": 0.5} etc."""
    spec = spec or {"type": "constant"}
    kind = _kind(spec, "lr_schedule", LR_SCHEDULES)
    factory = {"constant": ConstantLearningRate, "step": StepLearningRate,
               "cosine": CosineLearningRate}[kind]
    return call_with_spec(factory, spec, prefix="lr_schedule.")


def build_dropout_schedule(spec: dict[str, Any] | None) -> DropoutSchedule:
    """A dropout-rate schedule from {"type": "step", "every": 500, "delta": -0.1, ...} etc."""
    spec = spec or {"type": "constant"}
    kind = _kind(spec, "dropout_schedule", DROPOUT_SCHEDULES)
    if kind == "linear":
        renamed = {"start" if k == "from" else "end" if k == "to" else k: v
                   for k, v in spec.items()}
        for internal in ("start", "end"):
            if internal in spec:
                raise SpecError("unknown field", field=f"dropout_schedule.{internal}",
                                expected="from, iterations, to, type", received=internal)
        for required in ("from", "to"):
            if required not in spec:
                raise SpecError("field required", field=f"dropout_schedule.{required}")
        return call_with_spec(LinearDropout, renamed, prefix="dropout_schedule.")
    factory = {"constant": ConstantDropout, "step": StepDropout,
               "curriculum": CurriculumDropout}[kind]
    return call_with_spec(factory, spec, prefix="dropout_schedule.")


def _kind(spec: Any, field: str, options: tuple[str, ...]) -> str:
    if not isinstance(spec, dict):
        raise SpecError("invalid value", field=field, expected="an object", received=spec)
    return validation.choice(spec.get("type"), f"{field}.type", options)
