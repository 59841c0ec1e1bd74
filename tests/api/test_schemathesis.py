"""Schemathesis against the live OpenAPI schema: every operation, every check, schema-valid and
schema-violating data, random ids and real ones. SQLite only: the point is the HTTP surface.

Checks run: all of schemathesis's (not_a_server_error, status code, content type, response
headers and response schema conformance, negative data rejection, positive data acceptance,
missing required header, unsupported method, Allow header, ignored auth, ...). One setting is
ours: `positive_data_acceptance` also expects 422, because a spec can satisfy the JSON schema
and still be refused (a layer that does not fit its input, a cursor this server never issued,
a file that is not a dataset): rules no JSON schema can express. Under /v2 the inference
protocol says 400 for the same refusals (a tensor whose data does not fit its shape).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation import GenerationMode
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.app import create_app
from service.config import Settings
from service.jobs.runner import JobRunner
from service.store import jobs as job_rows
from service.store.session import Database
from service.workers.executor import NoExecutor
from tests.factories import spec

MAX_EXAMPLES = 30
MIN_REQUESTS = 1_500
AUTH = {"Authorization": "Bearer key-fuzz"}
CONFIG = schemathesis.Config.from_dict({"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "400", "401", "404", "409", "413", "422", "429"]}}})


class RequestCounter:
    """Counts the HTTP requests that reach the app, whoever sends them (the checks send some
    of their own: without credentials, with other methods)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests[scope["method"]] += 1
        await self.app(scope, receive, send)


@pytest.fixture
def fuzzed(sqlite_url: str) -> Iterator[tuple[RequestCounter, dict[str, str]]]:
    """The app with keys on, holding a trained job, a queued job and a dataset of the
    fuzzer's, whose ids some of the generated requests use."""
    db = Database(sqlite_url)
    config = Settings(database_url=sqlite_url, workers=0, api_keys="fuzzer:key-fuzz",
                      _env_file=None)
    app = create_app(config, db=db, executor=NoExecutor())
    with TestClient(app) as client:
        trained = client.post("/v1/jobs", json=spec(iterations=20, eval_every=10),
                              headers=AUTH).json()["id"]
        JobRunner(db, config, job_rows.WorkerIdentity(id="fuzz", host="fuzz", pid=1)).run()
        queued = client.post("/v1/jobs", json=spec(iterations=20), headers=AUTH).json()["id"]
        data = client.post("/v1/datasets", headers=AUTH, files={"file": (
            "d.csv", b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, -i, i % 2)
                                               for i in range(40)))}).json()["id"]
        sweep = client.post("/v1/sweeps", headers=AUTH, json={
            "name": "fuzzed", "base": spec(iterations=20),
            "parameters": {"training.seed": [1, 2]}}).json()["id"]
        yield RequestCounter(app), {"trained": trained, "queued": queued, "dataset": data,
                                    "sweep": sweep}
    db.dispose()


def real_ids(operation: Any, ids: dict[str, str]) -> dict[str, str] | None:
    """Path parameters naming resources that exist, for operations that take an id."""
    path = operation.path
    if "{model_name}" in path:
        return {"model_name": ids["trained"],
                **({"model_version": "1"} if "{model_version}" in path else {})}
    if "{job_id}" in path:
        job = ids["queued"] if path.endswith("/cancel") else ids["trained"]
        return {"job_id": job, **({"key": "batch_loss"} if "{key}" in path else {})}
    if "{dataset_id}" in path:
        return {"dataset_id": ids["dataset"]}
    if "{sweep_id}" in path:
        return {"sweep_id": ids["sweep"]}
    return None


def sends_every_extra_parameter(case: schemathesis.Case) -> bool:
    """False for a case whose only query parameters beyond the operation's are empty lists:
    the client sends no such parameter, so the request is valid although schemathesis
    generated it as one violating `additionalProperties` (and flags the 200 it gets)."""
    known = {parameter.name for parameter in case.operation.query}
    extra = [value for name, value in (case.query or {}).items() if name not in known]
    return not extra or any(value != [] for value in extra)


def fuzz(strategy: Any, label: str, checks: list[Any], cases: Counter[str]) -> None:
    """MAX_EXAMPLES cases of `strategy`, each sent with every check; raises what they find."""

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        assume(sends_every_extra_parameter(case))
        cases[label] += 1
        case.call_and_validate(checks=checks, headers=AUTH)

    run()


def test_every_operation_survives_schemathesis(fuzzed: tuple[RequestCounter, dict[str, str]]
                                               ) -> None:
    counter, ids = fuzzed
    load_all_checks()
    checks = CHECKS.get_all()
    schema = schemathesis.openapi.from_asgi("/openapi.json", counter, config=CONFIG)
    # The event streams are left out: a stream of a job or sweep that has not ended never
    # ends, so a generated request on the queued job or the sweep would wait forever (their
    # errors, ids and payloads are tested in tests/events/).
    operations = [result.ok() for result in schema.get_all_operations()
                  if not result.ok().path.endswith("/events")]
    labels = {operation.label for operation in operations}
    assert {"POST /v1/jobs", "GET /v1/jobs/{job_id}/metrics/{key}", "POST /v1/datasets",
            "POST /v1/jobs/{job_id}/predict", "DELETE /v1/datasets/{dataset_id}",
            "POST /v2/models/{model_name}/infer", "GET /v2/models/{model_name}",
            "GET /v2/health/ready"} <= labels
    # Deletions last, so that the real ids live while the other operations use them.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    cases: Counter[str] = Counter()
    failures = []
    for operation in operations:
        for variant in (None, real_ids(operation, ids)):
            if variant is None and cases[operation.label]:
                continue  # the operation takes no id: one run of each mode is enough
            for mode in GenerationMode:
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=variant)

                try:
                    fuzz(strategy, operation.label, checks, cases)
                except Unsatisfiable:
                    continue  # nothing about this operation can be made schema-invalid
                except (Exception, BaseExceptionGroup) as error:  # report every failure
                    failures.append(f"{operation.label} ({mode.value}, ids={variant}):\n{error}")
    sent = sum(counter.requests.values())
    print(f"\nschemathesis sent {sent} requests ({sum(cases.values())} generated cases, "
          f"{dict(counter.requests)}) to {len(operations)} operations")
    assert not failures, "\n\n".join(failures)
    assert sent >= MIN_REQUESTS
    # Operations without inputs have one possible request, which hypothesis finds at once.
    assert all(cases[label] >= MAX_EXAMPLES for label in labels
               if "/v1/" in label or "/v2/models/" in label), cases


def test_successful_requests_conform_to_the_schema(
        fuzzed: tuple[RequestCounter, dict[str, str]]) -> None:
    """Random data rarely makes a valid job spec or dataset: these are valid for certain, so
    the 2xx responses of the creating operations are checked against the schema too."""
    counter, ids = fuzzed
    load_all_checks()
    checks = CHECKS.get_all()
    schema = schemathesis.openapi.from_asgi("/openapi.json", counter, config=CONFIG)
    csv = b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, i % 7, i % 3) for i in range(30))
    requests = [
        ("POST", "/v1/jobs", {"body": spec(iterations=20)}, 201),
        ("POST", "/v1/datasets", {"body": {"file": csv, "name": "fuzz.csv"},
                                  "media_type": "multipart/form-data"}, 201),
        ("POST", "/v1/jobs/{job_id}/predict", {"path_parameters": {"job_id": ids["trained"]},
                                               "body": {"inputs": [[0.5] * 64] * 3}}, 200),
        ("GET", "/v1/jobs/{job_id}/model", {"path_parameters": {"job_id": ids["trained"]}},
         200),
        ("POST", "/v2/models/{model_name}/infer", {
            "path_parameters": {"model_name": ids["trained"]},
            "body": {"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP64",
                                 "data": [[0.5] * 64] * 2}],
                     "parameters": {"mc_samples": 3}}}, 200),
        ("GET", "/v2/models/{model_name}/versions/{model_version}", {
            "path_parameters": {"model_name": ids["trained"], "model_version": "1"}}, 200),
        ("GET", "/v2/models/{model_name}/ready", {
            "path_parameters": {"model_name": ids["trained"]}}, 200),
        ("GET", "/v1/jobs/{job_id}/metrics/{key}", {
            "path_parameters": {"job_id": ids["trained"], "key": "test_accuracy"},
            "query": {"format": "csv"}}, 200),
        ("GET", "/v1/jobs/{job_id}/metrics/{key}", {
            "path_parameters": {"job_id": ids["trained"], "key": "batch_loss"},
            "query": {"max_points": 5}}, 200),
        ("GET", "/v1/jobs/{job_id}/attempts", {"path_parameters": {"job_id": ids["trained"]}},
         200),
        ("POST", "/v1/jobs/{job_id}/cancel", {"path_parameters": {"job_id": ids["queued"]}},
         202),
        ("DELETE", "/v1/jobs/{job_id}", {"path_parameters": {"job_id": ids["trained"]}}, 204),
        ("DELETE", "/v1/datasets/{dataset_id}", {"path_parameters": {
            "dataset_id": ids["dataset"]}}, 204),
    ]
    for method, path, parts, status in requests:
        case = schema[path][method].Case(**parts)
        response = case.call_and_validate(checks=checks, headers=AUTH)
        assert response.status_code == status, (method, path, response.text[:300])


def test_the_schema_declares_our_error_shape_for_every_error(
        fuzzed: tuple[RequestCounter, dict[str, str]]) -> None:
    counter, _ = fuzzed
    with TestClient(counter.app) as client:
        schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(schema)
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    protocol_ref = {"$ref": "#/components/schemas/ProtocolError"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if path.startswith("/v2"):  # the inference protocol's own shape, 400 for 422
                assert "422" not in responses, (method, path)
                for status, response in responses.items():
                    if status.startswith("4") and path != "/v2/health/ready":
                        assert response["content"] == {
                            "application/json": {"schema": protocol_ref}}, (method, path)
                if path.startswith("/v2/models/"):
                    assert {"400", "401", "404"} <= set(responses), (method, path)
                continue
            for status, response in responses.items():
                if status.startswith("4"):
                    assert response["content"] == {"application/json": {"schema": error_ref}}, (
                        method, path, status)
            expected = {"401", "422"} if path.startswith("/v1/") else set()
            expected |= {"404"} if "{" in path else set()
            expected |= {"413"} if "requestBody" in operation else set()
            assert expected <= set(responses), (method, path, sorted(responses))
