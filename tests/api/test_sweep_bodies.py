"""Malformed sweep bodies: each is a 4xx whose details name the offending path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import DIGITS_SPEC


def body(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"name": "s", "base": copy.deepcopy(DIGITS_SPEC),
                              "parameters": {"dropout.rate": [0.0, 0.5]}}
    result.update(changes)
    return result


def no_dropout() -> dict[str, Any]:
    base = copy.deepcopy(DIGITS_SPEC)
    base["model"]["layers"] = [layer for layer in base["model"]["layers"]
                               if layer["type"] != "dropout"]
    base["training"].pop("dropout_schedule")
    return body(base=base)


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("no name", {k: v for k, v in body().items() if k != "name"}, "name"),
    ("no base", {k: v for k, v in body().items() if k != "base"}, "base"),
    ("no parameters", {k: v for k, v in body().items() if k != "parameters"}, "parameters"),
    ("empty parameters", body(parameters={}), "parameters"),
    ("empty value list", body(parameters={"dropout.rate": []}), "parameters.dropout.rate"),
    ("bad path syntax", body(parameters={"model..layers": [1]}), "parameters.model..layers"),
    ("unknown method", body(method="bayes"), "method"),
    ("random without samples", body(method="random"), "samples"),
    ("grid with samples", body(samples=3), "samples"),
    ("distribution in grid", body(parameters={"dropout.rate": {"uniform": [0, 0.5]}}),
     "parameters.dropout.rate"),
    ("reversed bounds", body(method="random", samples=2,
                             parameters={"dropout.rate": {"uniform": [0.5, 0.1]}}),
     "parameters.dropout.rate"),
    ("log_uniform from 0", body(method="random", samples=2, parameters={
        "training.optimizer.learning_rate": {"log_uniform": [0, 0.1]}}),
     "parameters.training.optimizer.learning_rate"),
    ("rate out of range", body(parameters={"dropout.rate": [0.2, 1.5]}),
     "parameters.dropout.rate"),
    ("string for a number", body(parameters={"training.seed": ["one"]}),
     "parameters.training.seed"),
    ("path into nothing", body(parameters={"model.nothing.here": [1]}),
     "parameters.model.nothing.here"),
    ("index past the layers", body(parameters={"model.layers[9].rate": [0.1]}),
     "parameters.model.layers[9].rate"),
    ("dropout.rate without dropout layers", no_dropout(), "parameters.dropout.rate"),
    ("unknown top-level field", body(colour="red"), "colour"),
    ("max_concurrent zero", body(max_concurrent=0), "max_concurrent"),
    ("unknown objective metric", body(objective={"metric": "f1", "goal": "max"}),
     "objective.metric"),
    ("field the job spec forbids", body(parameters={"training.bogus": [1]}),
     "parameters.training.bogus"),
    ("train_size above the digits", body(parameters={"data.train_size": [150, 5000]}),
     "parameters.data.train_size"),
    ("train_size above the split", body(parameters={"data.train_size": [1500]}),
     "parameters.data.train_size"),
    ("label_noise above one", body(parameters={"data.label_noise": [0.2, 1.5]}),
     "parameters.data.label_noise"),
]


def test_at_least_15_distinct_malformed_bodies() -> None:
    assert len({case for case, _, _ in MALFORMED}) == len(MALFORMED) >= 15


@pytest.mark.parametrize(("case", "payload", "path"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_sweep_is_a_4xx_naming_the_path(client: TestClient, case: str,
                                                    payload: dict[str, Any], path: str) -> None:
    response = client.post("/v1/sweeps", json=payload)
    assert 400 <= response.status_code < 500, (case, response.status_code)
    error = response.json()["error"]
    assert path in [detail["path"] for detail in error["details"]], (case, error)
    assert client.get("/v1/jobs").json()["data"] == []
