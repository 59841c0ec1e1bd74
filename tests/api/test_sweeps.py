"""/v1/sweeps: creation checks every run, runs are jobs, summaries, cancel, delete, CSV."""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import DIGITS_SPEC


def sweep_body(**changes: Any) -> dict[str, Any]:
    base = copy.deepcopy(DIGITS_SPEC)
    base["training"]["iterations"] = 20
    base["training"]["eval_every"] = 10
    body: dict[str, Any] = {"name": "rates", "base": base,
                            "parameters": {"dropout.rate": [0.0, 0.5],
                                           "training.seed": [1, 2]}}
    body.update(changes)
    return body


def create(client: TestClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/v1/sweeps", json=body or sweep_body())
    assert response.status_code == 201, response.text
    return response.json()


def test_a_grid_sweep_queues_one_job_per_combination(client: TestClient) -> None:
    sweep = create(client)
    assert sweep["counts"] == {"queued": 4} and sweep["status"] == "queued"
    jobs = client.get("/v1/jobs", params={"sweep_id": sweep["id"]}).json()["data"]
    assert len(jobs) == 4
    assert {job["sweep_id"] for job in jobs} == {sweep["id"]}
    settings = sorted((job["spec"]["model"]["layers"][1]["rate"], job["spec"]["training"]["seed"])
                      for job in jobs)
    assert settings == [(0.0, 1), (0.0, 2), (0.5, 1), (0.5, 2)]
    other = client.post("/v1/jobs", json=DIGITS_SPEC).json()
    assert other["sweep_id"] is None
    assert other["id"] not in {job["id"] for job in
                               client.get("/v1/jobs", params={"sweep_id": sweep["id"]})
                               .json()["data"]}


def test_a_finished_sweep_reports_runs_gaps_best_run_and_summary(
        client: TestClient, run_jobs: Callable[[], list[str]]) -> None:
    sweep = create(client)
    assert len(run_jobs()) == 4
    detail = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert detail["status"] == "succeeded" and detail["counts"] == {"succeeded": 4}
    for run in detail["runs"]:
        assert run["accuracy_gap"] == pytest.approx(run["train_accuracy"]
                                                    - run["test_accuracy"])
        assert run["loss_gap"] == pytest.approx(run["test_loss"] - run["train_loss"])
        assert run["best_test_accuracy"] >= run["test_accuracy"]
        assert run["best_test_accuracy_step"] in (10, 20)
    best = max(detail["runs"], key=lambda run: run["test_accuracy"])
    assert detail["best_run"]["test_accuracy"] == best["test_accuracy"]
    entries = {(item["parameter"], item["value"]): item for item in detail["summary"]}
    assert set(entries) == {("dropout.rate", 0.0), ("dropout.rate", 0.5),
                            ("training.seed", 1), ("training.seed", 2)}
    at_half = [run["test_accuracy"] for run in detail["runs"]
               if run["parameters"]["dropout.rate"] == 0.5]
    half = entries[("dropout.rate", 0.5)]["test_accuracy"]
    assert half["n"] == 2
    assert half["mean"] == pytest.approx(sum(at_half) / 2)
    assert half["min"] == min(at_half) and half["max"] == max(at_half)

    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/v1/sweeps/{sweep['id']}/runs.csv").text)))
    assert len(rows) == 4
    assert {row["job_id"] for row in rows} == {run["job_id"] for run in detail["runs"]}
    assert {row["dropout.rate"] for row in rows} == {"0.0", "0.5"}


def test_a_random_sweep_draws_seeded_values_in_bounds(client: TestClient) -> None:
    body = sweep_body(method="random", samples=5, seed=7, parameters={
        "training.optimizer.learning_rate": {"log_uniform": [0.001, 0.1]},
        "training.seed": {"int": [0, 3]},
        "dropout.rate": [0.1, 0.2],
        "data.test_fraction": {"uniform": [0.2, 0.3]}})
    first = client.get(f"/v1/sweeps/{create(client, body)['id']}").json()["runs"]
    second = client.get(f"/v1/sweeps/{create(client, body)['id']}").json()["runs"]
    assert [run["parameters"] for run in first] == [run["parameters"] for run in second]
    for run in first:
        values = run["parameters"]
        assert 0.001 <= values["training.optimizer.learning_rate"] <= 0.1
        assert values["training.seed"] in range(4)
        assert values["dropout.rate"] in (0.1, 0.2)
        assert 0.2 <= values["data.test_fraction"] <= 0.3
    other = client.get(f"/v1/sweeps/{create(client, sweep_body(**{**body, 'seed': 8}))['id']}")
    assert [run["parameters"] for run in other.json()["runs"]] != \
        [run["parameters"] for run in first]


def test_a_run_the_job_checks_refuse_names_path_value_and_field(client: TestClient) -> None:
    response = client.post("/v1/sweeps", json=sweep_body(
        parameters={"model.layers[0].units": [16, 9_000_000]}))
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == "parameters.model.layers[0].units"
    assert detail["received"] == 9_000_000
    assert "field model.layers[0].units refused" in detail["message"]
    assert client.get("/v1/jobs").json()["data"] == []
    assert client.get("/v1/sweeps").json()["data"] == []


def test_a_run_the_server_limits_refuse_names_the_field(client: TestClient) -> None:
    response = client.post("/v1/sweeps", json=sweep_body(
        parameters={"training.iterations": [10, 10_000_000]}))
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == "parameters.training.iterations"
    assert "training.iterations" in detail["message"] and detail["received"] == 10_000_000


def test_too_many_runs_is_refused_before_anything_is_stored(client: TestClient) -> None:
    response = client.post("/v1/sweeps", json=sweep_body(
        parameters={"training.seed": list(range(17)), "dropout.rate": [0.1] * 16}))
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["received"] == 17 * 16
    assert client.get("/v1/jobs").json()["data"] == []


def test_runs_count_against_the_owners_queue_limit(settings: Any, db: Any) -> None:
    from service.api.app import create_app
    from service.workers.executor import NoExecutor

    app = create_app(settings.model_copy(update={"max_queued_jobs_per_owner": 5}), db=db,
                     executor=NoExecutor())
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v1/jobs", json=DIGITS_SPEC).status_code == 201
        assert client.post("/v1/jobs", json=DIGITS_SPEC).status_code == 201
        response = client.post("/v1/sweeps", json=sweep_body())
        assert response.status_code == 429, response.text
        assert len(client.get("/v1/jobs").json()["data"]) == 2


def test_idempotency_key_creates_one_sweep(client: TestClient) -> None:
    headers = {"Idempotency-Key": "sweep-1"}
    first = client.post("/v1/sweeps", json=sweep_body(), headers=headers)
    again = client.post("/v1/sweeps", json=sweep_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(client.get("/v1/jobs").json()["data"]) == 4


def test_list_is_paginated_newest_first(client: TestClient) -> None:
    ids = [create(client, sweep_body(parameters={"training.seed": [1]}))["id"]
           for _ in range(3)]
    page = client.get("/v1/sweeps", params={"limit": 2}).json()
    assert [s["id"] for s in page["data"]] == ids[::-1][:2]
    rest = client.get("/v1/sweeps", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [s["id"] for s in rest["data"]] == ids[:1] and rest["next_cursor"] is None


def test_cancel_then_delete_removes_the_sweep_and_its_runs(client: TestClient) -> None:
    sweep = create(client)
    assert client.delete(f"/v1/sweeps/{sweep['id']}").status_code == 409
    cancelled = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["counts"] == {"cancelled": 4}
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 409
    assert client.delete(f"/v1/sweeps/{sweep['id']}").status_code == 204
    assert client.get(f"/v1/sweeps/{sweep['id']}").status_code == 404
    assert client.get("/v1/jobs").json()["data"] == []


def test_an_unknown_sweep_is_404(client: TestClient) -> None:
    for method, path in [("GET", "/v1/sweeps/nope"), ("POST", "/v1/sweeps/nope/cancel"),
                         ("DELETE", "/v1/sweeps/nope"), ("GET", "/v1/sweeps/nope/runs.csv")]:
        assert client.request(method, path).status_code == 404
