"""Idempotency-Key on POST /v1/jobs and POST /v1/datasets: a retried request gets the first
response back, a key reused for another request is a 422, and concurrent identical requests
create exactly one resource (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.store import idempotency as idempotency_rows
from tests.factories import DIGITS_SPEC, dataset_npz, spec

CONCURRENT = 8


def submit(client: TestClient, body: Any = None, key: str | None = "key-1") -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/v1/jobs", json=DIGITS_SPEC if body is None else body, headers=headers)


def upload(client: TestClient, data: bytes, key: str | None = "key-1", **form: Any) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/v1/datasets", files={"file": ("d.npz", data)}, data=form,
                       headers=headers)


def job_count(client: TestClient) -> int:
    return len(client.get("/v1/jobs", params={"limit": 1000}).json()["data"])


def dataset_count(client: TestClient) -> int:
    return len(client.get("/v1/datasets", params={"limit": 1000}).json()["data"])


def assert_key_reused(response: Any) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert [(d["path"], d["type"]) for d in error["details"]] == [
        ("Idempotency-Key", "idempotency_mismatch")]


def concurrently(call: Callable[[], Any], n: int = CONCURRENT) -> list[Any]:
    """`n` calls released at the same moment from `n` threads."""
    start = threading.Barrier(n)

    def run() -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: run(), range(n)))


# -- jobs -----------------------------------------------------------------------------------


def test_a_retried_job_submission_gets_the_first_response(client: TestClient,
                                                          executor: Any) -> None:
    first = submit(client)
    again = submit(client)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert job_count(client) == 1 and list(executor.notified) == [first.json()["id"]]


def test_the_same_spec_written_differently_is_the_same_request(client: TestClient) -> None:
    first = submit(client)
    reordered = dict(reversed(list(DIGITS_SPEC.items())))
    raw = json.dumps(reordered, indent=4).encode()
    again = client.post("/v1/jobs", content=raw, headers={
        "Idempotency-Key": "key-1", "content-type": "application/json"})
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]


def test_a_key_reused_for_another_job_is_422(client: TestClient) -> None:
    first = submit(client)
    assert_key_reused(submit(client, spec(iterations=61)))
    assert_key_reused(submit(client, {**DIGITS_SPEC, "name": "other"}))
    assert job_count(client) == 1
    assert submit(client).json()["id"] == first.json()["id"]  # the key still replays
    assert submit(client, spec(iterations=61), key="key-2").status_code == 201


def test_a_retry_is_replayed_even_after_the_job_moved_on(client: TestClient,
                                                         run_jobs: Callable) -> None:
    first = submit(client).json()
    run_jobs()
    again = submit(client)
    assert again.status_code == 201 and again.json() == first  # the response, as first sent
    assert job_count(client) == 1


def test_an_invalid_spec_is_not_remembered(client: TestClient) -> None:
    refused = submit(client, spec(iterations=0))
    assert refused.status_code == 422
    assert submit(client).status_code == 201  # the key was not used up by the failure


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\tkey", "bell\x07"])
def test_malformed_keys_are_422(client: TestClient, key: str) -> None:
    response = submit(client, key=key)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["path"] == "Idempotency-Key"
    assert job_count(client) == 0


@pytest.fixture
def slow_remember(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Widen the race: each request lingers after creating its resource and before storing
    its key, so concurrent requests all get past the lookup (on PostgreSQL) before any
    commits. Returns the keys of the requests that got that far."""
    reached = []
    add = idempotency_rows.add

    def slow(*args: Any, **kwargs: Any) -> None:
        reached.append(kwargs["key"])
        time.sleep(0.2)
        add(*args, **kwargs)

    monkeypatch.setattr(idempotency_rows, "add", slow)
    return reached


def test_concurrent_identical_submissions_create_one_job(client: TestClient, executor: Any,
                                                         slow_remember: list[str]) -> None:
    responses = concurrently(lambda: submit(client, key="race"))
    assert [r.status_code for r in responses] == [201] * CONCURRENT, [
        r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == \
        CONCURRENT - 1
    assert job_count(client) == 1
    assert list(executor.notified) == [responses[0].json()["id"]]
    assert slow_remember  # the race was run through the key's storage at least once


def test_concurrent_submissions_of_different_specs_under_one_key(
        client: TestClient, slow_remember: list[str]) -> None:
    bodies = iter([spec(iterations=60 + i) for i in range(CONCURRENT)])
    lock = threading.Lock()

    def next_body() -> Any:
        with lock:
            return next(bodies)

    responses = concurrently(lambda: submit(client, next_body(), key="race"))
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, [r.text for r in responses]
    assert all(r.status_code == 422 for r in responses if r.status_code != 201)
    assert job_count(client) == 1


# -- datasets -------------------------------------------------------------------------------


def test_a_retried_upload_gets_the_first_response(client: TestClient) -> None:
    first = upload(client, dataset_npz(), name="toy")
    again = upload(client, dataset_npz(), name="toy")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert dataset_count(client) == 1


@pytest.mark.parametrize("change", [
    {"data": dataset_npz(seed=1)}, {"name": "other"}, {"test_fraction": "0.5"},
    {"split_seed": "7"}], ids=["file", "name", "test_fraction", "split_seed"])
def test_a_key_reused_for_another_upload_is_422(client: TestClient,
                                                change: dict[str, Any]) -> None:
    assert upload(client, dataset_npz(), name="toy").status_code == 201
    form = {"name": "toy", **{k: v for k, v in change.items() if k != "data"}}
    assert_key_reused(upload(client, change.get("data", dataset_npz()), **form))
    assert dataset_count(client) == 1


def test_jobs_and_datasets_keep_separate_keys(client: TestClient) -> None:
    assert upload(client, dataset_npz(), key="shared").status_code == 201
    assert submit(client, key="shared").status_code == 201


def test_concurrent_identical_uploads_create_one_dataset(client: TestClient,
                                                         slow_remember: list[str]) -> None:
    data = dataset_npz()
    responses = concurrently(lambda: upload(client, data, key="race"))
    assert [r.status_code for r in responses] == [201] * CONCURRENT, [
        r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert dataset_count(client) == 1
