"""API keys: every /v1 route needs one, jobs and datasets belong to the key's owner, and
another owner cannot tell them apart from ids that do not exist."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from service import auth
from service.api.app import create_app
from service.config import Settings
from service.store.models import ApiKey
from service.store.session import Database
from service.workers.executor import NoExecutor
from tests.factories import DIGITS_SPEC, dataset_npz

ALICE, BOB = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}

# The id-bearing routes this suite knows about; the app may grow more (they are tested too).
KNOWN_ID_ROUTES = {
    ("GET", "/v1/jobs/{job_id}"), ("DELETE", "/v1/jobs/{job_id}"),
    ("POST", "/v1/jobs/{job_id}/cancel"), ("GET", "/v1/jobs/{job_id}/attempts"),
    ("GET", "/v1/jobs/{job_id}/deliveries"),
    ("GET", "/v1/jobs/{job_id}/model"), ("GET", "/v1/jobs/{job_id}/metrics"),
    ("GET", "/v1/jobs/{job_id}/metrics/{key}"), ("POST", "/v1/jobs/{job_id}/predict"),
    ("GET", "/v1/datasets/{dataset_id}"), ("DELETE", "/v1/datasets/{dataset_id}"),
    ("GET", "/v1/sweeps/{sweep_id}"), ("DELETE", "/v1/sweeps/{sweep_id}"),
    ("POST", "/v1/sweeps/{sweep_id}/cancel"), ("GET", "/v1/sweeps/{sweep_id}/runs.csv"),
    ("GET", "/v1/sweeps/{sweep_id}/deliveries"),
    ("GET", "/v1/jobs/{job_id}/events"), ("GET", "/v1/sweeps/{sweep_id}/events"),
    ("GET", "/v2/models/{model_name}"), ("GET", "/v2/models/{model_name}/ready"),
    ("POST", "/v2/models/{model_name}/infer"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}/ready"),
    ("POST", "/v2/models/{model_name}/versions/{model_version}/infer"),
}
OPEN_PATHS = ("/healthz", "/readyz", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready")
V2_INFER_BODY = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                             "data": [0.0] * 64}]}
DASHBOARD_PAGES = {"/jobs/{job_id}", "/sweeps/{sweep_id}"}


def keyed_app(database_url: str, db: Database, api_keys: str = "alice:key-a,bob:key-b"):
    settings = Settings(database_url=database_url, workers=0, api_keys=api_keys,
                        _env_file=None)
    return create_app(settings, db=db, executor=NoExecutor())


@pytest.fixture
def keyed(database_url: str, db: Database) -> Iterator[TestClient]:
    """alice and bob, with keys from DROPNET_API_KEYS."""
    with TestClient(keyed_app(database_url, db), raise_server_exceptions=False) as client:
        yield client


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path template) of every APIRoute in app.routes (included routers stay nested
    in app.routes; iter_route_contexts flattens them with their prefixes)."""
    return sorted((method, context.path) for context in iter_route_contexts(client.app.routes)
                  if isinstance(context.original_route, APIRoute)
                  for method in context.methods)


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    """One request to `path`, with a body where the route takes one."""
    if method == "POST" and path == "/v1/datasets":
        return client.post(path, files={"file": ("d.npz", dataset_npz())}, headers=headers)
    if method == "POST" and path.endswith("/predict"):
        return client.post(path, json={"inputs": [[0.0] * 64]}, headers=headers)
    if method == "POST" and path.endswith("/infer"):
        return client.post(path, json=V2_INFER_BODY, headers=headers)
    if method == "POST" and path == "/v1/jobs":
        return client.post(path, json=DIGITS_SPEC, headers=headers)
    return client.request(method, path, headers=headers)


def assert_error(response: Any, status: int, code: str) -> None:
    """The error shape of /v1 with `code`; under /v2 the protocol's {"error": "..."}."""
    assert response.status_code == status, response.text
    body = response.json()
    if response.request.url.path.startswith("/v2/"):
        assert set(body) == {"error"} and isinstance(body["error"], str), body
        return
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and isinstance(
        body["error"]["details"], list)


def owned_job_and_dataset(client: TestClient, headers: dict[str, str],
                          run_jobs: Callable[[], list[str]]) -> tuple[str, str]:
    """A trained job and an uploaded dataset of the caller; a finished sweep of the caller is
    recorded in SWEEPS under the job's id, where `fill` finds it."""
    job = client.post("/v1/jobs", json=DIGITS_SPEC, headers=headers)
    assert job.status_code == 201, job.text
    sweep = client.post("/v1/sweeps", headers=headers, json={
        "name": "owned", "base": DIGITS_SPEC, "parameters": {"training.seed": [1]}})
    assert sweep.status_code == 201, sweep.text
    run_jobs()
    dataset = client.post("/v1/datasets", files={"file": ("d.npz", dataset_npz())},
                          headers=headers)
    assert dataset.status_code == 201, dataset.text
    SWEEPS[job.json()["id"]] = sweep.json()["id"]
    return job.json()["id"], dataset.json()["id"]


SWEEPS: dict[str, str] = {}
"""The sweep owned_job_and_dataset created alongside each job id."""


def fill(template: str, job_id: str, dataset_id: str) -> str:
    values = {"job_id": job_id, "model_name": job_id, "model_version": "1",
              "dataset_id": dataset_id, "key": "batch_loss",
              "sweep_id": SWEEPS.get(job_id, job_id)}
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], template)


# -- who may call -------------------------------------------------------------------------


BAD_AUTHORIZATIONS = [None, "", "Bearer", "Bearer ", "Bearer wrong-key", "Basic a2V5LWE6",
                      "key-a", "Token key-a", "Bearer key-a-but-longer", "Bearer key-b2"]


def test_every_v1_and_v2_model_route_refuses_a_missing_or_wrong_key(keyed: TestClient) -> None:
    routes = [(m, p) for m, p in api_routes(keyed) if p.startswith(("/v1", "/v2/models/"))]
    assert KNOWN_ID_ROUTES | {("POST", "/v1/jobs"), ("GET", "/v1/jobs"),
                              ("POST", "/v1/datasets"), ("GET", "/v1/datasets"),
                              ("GET", "/v1/datasets/builtin")} <= set(routes)
    for authorization in BAD_AUTHORIZATIONS:
        headers = {} if authorization is None else {"Authorization": authorization}
        for method, template in routes:
            response = call(keyed, method, fill(template, "0" * 32, "0" * 32), headers)
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer", (method, template)
    assert keyed.get("/v1/jobs", headers=ALICE).status_code == 200


def test_health_and_prometheus_need_no_key(keyed: TestClient) -> None:
    for path in OPEN_PATHS:
        assert keyed.get(path).status_code == 200, path


def test_the_schema_declares_bearer_keys_on_every_v1_operation(keyed: TestClient) -> None:
    schema = keyed.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            declared = operation.get("security") == [{"ApiKey": []}]
            assert declared == path.startswith(("/v1", "/v2/models/")), (method, path)
            if declared:
                assert "401" in operation["responses"], (method, path)


# -- what they may see --------------------------------------------------------------------


def test_another_owner_gets_404_on_every_id_route(keyed: TestClient,
                                                  run_jobs: Callable[[], list[str]]) -> None:
    job_id, dataset_id = owned_job_and_dataset(keyed, ALICE, run_jobs)
    # The dashboard's pages (/jobs/{id}, /sweeps/{id}) are the same static shell for any id;
    # the data they show comes from these /v1 routes.
    id_routes = [(m, p) for m, p in api_routes(keyed) if "{" in p and p not in DASHBOARD_PAGES]
    assert set(id_routes) >= KNOWN_ID_ROUTES, set(id_routes)
    # bob first (nothing cached), then alice (her model is now cached), then bob again.
    for method, template in id_routes:
        assert_error(call(keyed, method, fill(template, job_id, dataset_id), BOB), 404,
                     "not_found")
    for method, template in id_routes:
        if method == "GET" or template.endswith(("/predict", "/infer")):
            response = call(keyed, method, fill(template, job_id, dataset_id), ALICE)
            assert response.status_code == 200, (method, template, response.text)
    for method, template in id_routes:
        response = call(keyed, method, fill(template, job_id, dataset_id), BOB)
        assert_error(response, 404, "not_found")
        # Indistinguishable from an id that exists nowhere.
        unknown = call(keyed, method, fill(template, "f" * 32, "f" * 32), BOB)
        assert unknown.status_code == 404, (method, template)
    # bob's DELETE and cancel changed nothing.
    job = keyed.get(f"/v1/jobs/{job_id}", headers=ALICE).json()
    assert job["status"] == "succeeded" and not job["cancel_requested"]
    assert keyed.get(f"/v1/datasets/{dataset_id}", headers=ALICE).status_code == 200


def test_jobs_cannot_train_on_another_owners_dataset(keyed: TestClient) -> None:
    dataset = keyed.post("/v1/datasets", files={"file": ("d.npz", dataset_npz())}, headers=ALICE)
    spec = {**DIGITS_SPEC, "data": {"dataset_id": dataset.json()["id"]},
            "model": {"input_shape": [4], "layers": [
                {"type": "dense", "units": 3, "activation": "softmax"}]}}
    assert keyed.post("/v1/jobs", json=spec, headers=ALICE).status_code == 201
    refused = keyed.post("/v1/jobs", json=spec, headers=BOB)
    assert refused.status_code == 422
    assert [d["path"] for d in refused.json()["error"]["details"]] == ["data.dataset_id"]


def test_lists_show_only_the_callers_own(keyed: TestClient) -> None:
    mine = {keyed.post("/v1/jobs", json=DIGITS_SPEC, headers=ALICE).json()["id"]
            for _ in range(3)}
    theirs = {keyed.post("/v1/jobs", json=DIGITS_SPEC, headers=BOB).json()["id"]}
    my_data = {keyed.post("/v1/datasets", files={"file": ("a.npz", dataset_npz(seed=1))},
                          headers=ALICE).json()["id"]}
    their_data = {keyed.post("/v1/datasets", files={"file": ("b.npz", dataset_npz(seed=2))},
                             headers=BOB).json()["id"]}

    def job_ids(headers: dict[str, str], **params: Any) -> set[str]:
        ids, cursor = set(), None
        while True:
            page = keyed.get("/v1/jobs", params={"limit": 1, **params,
                                                 **({"cursor": cursor} if cursor else {})},
                             headers=headers).json()
            ids |= {job["id"] for job in page["data"]}
            if not (cursor := page["next_cursor"]):
                return ids

    assert job_ids(ALICE) == job_ids(ALICE, status="queued") == mine
    assert job_ids(BOB) == theirs
    assert {d["id"] for d in keyed.get("/v1/datasets", headers=ALICE).json()["data"]} == my_data
    assert {d["id"] for d in keyed.get("/v1/datasets", headers=BOB).json()["data"]} == their_data


def test_idempotency_keys_are_per_owner(keyed: TestClient) -> None:
    key = {"Idempotency-Key": "same-key"}
    first = keyed.post("/v1/jobs", json=DIGITS_SPEC, headers={**ALICE, **key})
    other = keyed.post("/v1/jobs", json=DIGITS_SPEC, headers={**BOB, **key})
    assert first.status_code == other.status_code == 201
    assert first.json()["id"] != other.json()["id"]
    assert "idempotent-replayed" not in other.headers
    assert keyed.get(f"/v1/jobs/{first.json()['id']}", headers=BOB).status_code == 404


# -- keys in the api_keys table -----------------------------------------------------------


def add_table_key(db: Database, owner: str) -> tuple[str, str]:
    """(key id, key) of a new key stored the way `dropnet keys create` stores it."""
    key = auth.generate_key()
    with db.write() as session:
        record = ApiKey(id=uuid.uuid4().hex, owner=owner, key_hash=auth.hash_key(key),
                        prefix=key[:8])
        session.add(record)
    return record.id, key


def revoke(db: Database, key_id: str) -> None:
    with db.write() as session:
        session.get(ApiKey, key_id).revoked_at = dt.datetime.now(dt.UTC)


def test_table_keys_are_stored_as_sha256_and_own_their_jobs(database_url: str,
                                                            db: Database) -> None:
    key_id, key = add_table_key(db, "carol")
    with db.read() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.id == key_id)).one()
        stored = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", row.key_hash)
    assert not any(key in value for value in stored), "the key itself must never be stored"
    carol = {"Authorization": f"Bearer {key}"}
    with TestClient(keyed_app(database_url, db, api_keys=""),
                    raise_server_exceptions=False) as client:
        assert_error(client.get("/v1/jobs"), 401, "unauthorized")
        job = client.post("/v1/jobs", json=DIGITS_SPEC, headers=carol)
        assert job.status_code == 201
        listed = client.get("/v1/jobs", headers=carol).json()["data"]
        assert [j["id"] for j in listed] == [job.json()["id"]]


@pytest.mark.parametrize("static_keys", ["", "alice:key-a"], ids=["table-only", "with-env"])
def test_a_revoked_key_stops_working(database_url: str, db: Database,
                                     monkeypatch: pytest.MonkeyPatch, static_keys: str) -> None:
    monkeypatch.setattr(auth, "CACHE_SECONDS", 0.0)
    key_id, key = add_table_key(db, "carol")
    carol = {"Authorization": f"Bearer {key}"}
    with TestClient(keyed_app(database_url, db, api_keys=static_keys),
                    raise_server_exceptions=False) as client:
        assert client.get("/v1/jobs", headers=carol).status_code == 200
        revoke(db, key_id)
        assert_error(client.get("/v1/jobs", headers=carol), 401, "unauthorized")
        # Revoking the last key must not open the service to anyone.
        assert_error(client.get("/v1/jobs"), 401, "unauthorized")
        assert_error(client.post("/v1/jobs", json=DIGITS_SPEC), 401, "unauthorized")


# -- an open service ----------------------------------------------------------------------


def test_without_keys_the_service_is_open_and_says_so(database_url: str, db: Database,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    open_app = keyed_app(database_url, db, api_keys="")
    with caplog.at_level(logging.WARNING, logger="service.api.app"), TestClient(
            open_app, raise_server_exceptions=False) as client:
        assert client.get("/v1/jobs").status_code == 200
        # Any bearer token is ignored: everyone is the same anonymous owner.
        job = client.post("/v1/jobs", json=DIGITS_SPEC, headers=ALICE).json()
        assert client.get(f"/v1/jobs/{job['id']}", headers=BOB).status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("open" in r.getMessage() and "DROPNET_API_KEYS" in r.getMessage()
               for r in warnings), caplog.text


def test_with_keys_there_is_no_open_service_warning(database_url: str, db: Database,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="service.api.app"), TestClient(
            keyed_app(database_url, db)):
        pass
    assert "open" not in caplog.text
