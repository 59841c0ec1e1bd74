"""Expanding a sweep into run specs: grid products or seeded random draws over parameter paths.

A path such as `model.layers[1].rate` addresses a field of the job spec's JSON; `dropout.rate`
sets `rate` on every dropout layer (dropout, spatial_dropout2d, gaussian_dropout) at once.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import re
from typing import Any

from service.errors import ErrorDetail, InvalidSpec

from .specs import IntRange, LogUniform, Scalar, SweepCreate, Uniform

DROPOUT_RATE = "dropout.rate"
DROPOUT_TYPES = ("dropout", "spatial_dropout2d", "gaussian_dropout")
_STEP = re.compile(r"([a-z_][a-z0-9_]*)(?:\[([0-9]+)\])?")

Assignment = dict[str, Scalar]


def assignments(sweep: SweepCreate) -> list[Assignment]:
    """One {path: value} per run: every grid combination, or `samples` seeded draws."""
    if sweep.method == "grid":
        grid = _grid(sweep)
        return [dict(zip(grid, combo, strict=True))
                for combo in itertools.product(*grid.values())]
    rng = random.Random(sweep.seed)
    return [{path: _draw(values, rng) for path, values in sweep.parameters.items()}
            for _ in range(sweep.samples or 0)]


def problems(sweep: SweepCreate) -> list[ErrorDetail]:
    """What the JSON schema cannot say: `samples` for random sweeps only, lists only in a
    grid, and bounds in order (and positive for log_uniform)."""
    found: list[ErrorDetail] = []
    if sweep.method == "random" and sweep.samples is None:
        found.append(ErrorDetail("samples", "a random sweep needs how many runs to draw",
                                 expected="an integer >= 1", received=None, type="missing"))
    if sweep.method == "grid" and sweep.samples is not None:
        found.append(ErrorDetail("samples", "only a random sweep takes samples",
                                 expected="no samples, or method random",
                                 received=sweep.samples))
    for path, values in sweep.parameters.items():
        if isinstance(values, list):
            continue
        if sweep.method == "grid":
            found.append(ErrorDetail(f"parameters.{path}", "a grid sweep takes a list of "
                                     "values; distributions need method random",
                                     expected="a list of values",
                                     received=values.model_dump(by_alias=True)))
            continue
        low, high = (values.uniform if isinstance(values, Uniform) else
                     values.log_uniform if isinstance(values, LogUniform) else values.int_)
        positive = isinstance(values, LogUniform)
        if low > high or (positive and low <= 0):
            found.append(ErrorDetail(
                f"parameters.{path}", "the bounds are out of order or not positive",
                expected="[a, b] with a <= b" + (" and a > 0" if positive else ""),
                received=[low, high]))
    return found


def run_count(sweep: SweepCreate) -> int:
    """How many runs `assignments` would return, without building them."""
    if sweep.method == "random":
        return sweep.samples or 0
    return math.prod([len(values) for values in _grid(sweep).values()])


def _grid(sweep: SweepCreate) -> dict[str, list[Scalar]]:
    """A grid sweep's {path: values}; `problems` refuses a distribution in a grid first."""
    grid = {path: values for path, values in sweep.parameters.items()
            if isinstance(values, list)}
    assert len(grid) == len(sweep.parameters), "a grid sweep with a distribution"
    return grid


def _draw(values: Any, rng: random.Random) -> Scalar:
    if isinstance(values, list):
        return values[rng.randrange(len(values))]
    if isinstance(values, Uniform):
        return rng.uniform(*values.uniform)
    if isinstance(values, LogUniform):
        low, high = values.log_uniform
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if isinstance(values, IntRange):
        return rng.randint(*values.int_)
    raise TypeError(f"expected a list or a distribution, received {type(values).__name__}")


def apply(base: dict[str, Any], assignment: Assignment) -> dict[str, Any]:
    """A copy of the job spec JSON `base` with each path set; InvalidSpec names a path that
    addresses nothing in the spec."""
    spec = copy.deepcopy(base)
    for path, value in assignment.items():
        if path == DROPOUT_RATE:
            _set_dropout_rates(spec, value)
        else:
            _set(spec, path, value)
    return spec


def _set_dropout_rates(spec: dict[str, Any], value: Scalar) -> None:
    layers = [layer for layer in spec["model"]["layers"] if layer.get("type") in DROPOUT_TYPES]
    if not layers:
        raise InvalidSpec("the sweep's parameter addresses nothing", [ErrorDetail(
            f"parameters.{DROPOUT_RATE}", "the base network has no dropout layer to set",
            expected=f"at least one layer of type {', '.join(DROPOUT_TYPES)} in base.model",
            received=[layer.get("type") for layer in spec["model"]["layers"]])])
    for layer in layers:
        layer["rate"] = value


def _set(spec: dict[str, Any], path: str, value: Scalar) -> None:
    steps = [_STEP.fullmatch(step) for step in path.split(".")]
    node: Any = spec
    for position, match in enumerate(steps):
        assert match is not None  # the path pattern was checked by SweepCreate
        key, index = match.group(1), match.group(2)
        last = position == len(steps) - 1 and index is None
        if not isinstance(node, dict) or (key not in node and not last):
            _nowhere(path, ".".join(path.split(".")[:position + 1]))
        if last:
            node[key] = value
            return
        node = node[key]
        if index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                _nowhere(path, ".".join(path.split(".")[:position + 1]),
                         f"a list with more than {index} items")
            if position == len(steps) - 1:
                node[int(index)] = value
                return
            node = node[int(index)]


def _nowhere(path: str, prefix: str, expected: str = "a field of the base job spec") -> None:
    raise InvalidSpec("the sweep's parameter addresses nothing", [ErrorDetail(
        f"parameters.{path}", f"{prefix!r} is not in the base job spec", expected=expected,
        received=path)])
