"""The inference protocol's hot path answers exactly as the route does, and only when it may.

Model look-ups tell who answered: the fast path looks the model up once; the route, when it
gets as far as the model, looks it up again."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.factories import spec

SAMPLE = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                      "data": [0.25] * 64}]}


@pytest.fixture
def trained(client: TestClient, run_jobs) -> str:
    job_id = client.post("/v1/jobs", json=spec(iterations=50)).json()["id"]
    run_jobs()
    return job_id


def infer(client: TestClient, job_id: str, body: Any = SAMPLE, **kwargs: Any) -> tuple[Any, int]:
    models = client.app.state.dropnet.models
    before = models.hits + models.misses
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(f"/v2/models/{job_id}/infer", content=content, **kwargs)
    return response, models.hits + models.misses - before


def test_the_fast_path_answers_like_the_route(client: TestClient, trained: str) -> None:
    first, lookups = infer(client, trained)  # not cached yet: the route loads the model
    assert first.status_code == 200 and lookups == 2
    second, lookups = infer(client, trained)  # cached: answered below the router
    assert lookups == 1
    assert second.status_code == 200 and second.json() == first.json()
    assert second.headers["content-type"] == "application/json"


def test_binary_answers_on_the_fast_path_match_the_routes(client: TestClient,
                                                          trained: str) -> None:
    body = {**SAMPLE, "parameters": {"binary_data_output": True}}
    infer(client, trained)
    fast, lookups = infer(client, trained, body)
    assert lookups == 1
    versioned = client.post(f"/v2/models/{trained}/versions/1/infer", json=body)  # the route
    assert versioned.status_code == 200 and fast.content == versioned.content
    assert fast.headers["inference-header-content-length"] == versioned.headers[
        "inference-header-content-length"]
    assert fast.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(("body", "status", "words", "lookups"), [
    ({"inputs": [{"name": "input", "shape": [1, 63], "datatype": "FP32",
                  "data": [0.25] * 63}]}, 400, "input shape", 2),
    ({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.25] * 64}],
      "extra": 1}, 400, "extra", 1),
    (b'{"inputs": [NaN]}', 400, "NaN", 1),
    ({"inputs": [{"name": "input", "shape": [100, 64], "datatype": "FP32",
                  "data": [0.25] * 6400}]}, 200, None, 2),  # large: the route's thread
    ({**SAMPLE, "parameters": {"mc_samples": 3}}, 200, None, 2),  # MC: the route's thread
])
def test_anything_unusual_goes_to_the_route(client: TestClient, trained: str, body: Any,
                                            status: int, words: str | None,
                                            lookups: int) -> None:
    infer(client, trained)
    response, looked_up = infer(client, trained, body)
    assert response.status_code == status and looked_up == lookups, response.text
    if words is not None:
        assert words in response.json()["error"]


def test_query_parameters_are_the_routes_to_refuse(client: TestClient, trained: str) -> None:
    infer(client, trained)
    response, _ = infer(client, trained, params={"debug": 1})
    assert response.status_code == 400 and "debug" in response.json()["error"]


def test_keys_and_owners_are_enforced_on_the_fast_path(db, run_jobs) -> None:
    settings = Settings(database_url=str(db.url), workers=0, api_keys="ann:key-a,bob:key-b",
                        _env_file=None)
    with TestClient(create_app(settings, db=db)) as client:
        ann = {"Authorization": "Bearer key-a"}
        job_id = client.post("/v1/jobs", json=spec(iterations=50), headers=ann).json()["id"]
        run_jobs()
        assert infer(client, job_id, headers=ann)[0].status_code == 200
        ok, lookups = infer(client, job_id, headers=ann)
        assert ok.status_code == 200 and lookups == 1
        assert infer(client, job_id, headers={"Authorization": "Bearer key-b"})[0].status_code \
            == 404
        assert infer(client, job_id)[0].status_code == 401
        assert infer(client, job_id, headers={"Authorization": "Bearer nope"})[0].status_code \
            == 401


def test_request_metrics_label_the_fast_path_with_the_route(client: TestClient,
                                                            trained: str) -> None:
    from service.telemetry import REQUEST_SECONDS

    infer(client, trained)
    label = ("POST", "/v2/models/{model_name}/infer", "200")
    before = REQUEST_SECONDS.labels(*label)._sum.get()
    infer(client, trained)
    assert REQUEST_SECONDS.labels(*label)._sum.get() > before
