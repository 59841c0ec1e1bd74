import copy

import pytest

from tests.factories import DIGITS_SPEC, spec

# 65536 x 65536 weights: refused from shapes alone, never allocated (16 GiB in float32).
HUGE_LAYERS = [{"type": "dense", "units": 65536}, {"type": "dense", "units": 65536}]


def submit(client, body=None, **headers):
    return client.post("/v1/jobs", json=body or DIGITS_SPEC, headers=headers)


def error_paths(response):
    return [d["path"] for d in response.json()["error"]["details"]]


def test_submit_returns_201_with_location_and_the_spec_with_defaults(client, executor):
    response = submit(client)
    assert response.status_code == 201
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["attempts"] == 0 and job["worker"] is None
    assert job["progress"] == {"iteration": 0, "total": 60, "iterations_per_second": None,
                               "eta_seconds": None}
    training = job["spec"]["training"]
    assert training["sampling"] == "epoch" and training["loss"] == "cross_entropy"
    assert training["checkpoint"]["every_iterations"] >= 1
    assert training["lr_schedule"] == {"type": "constant"}
    assert list(executor.notified) == [job["id"]]
    assert client.get(response.headers["location"]).json()["id"] == job["id"]


def test_job_trains_and_shows_progress_metrics_and_worker(client, run_jobs):
    job_id = submit(client).json()["id"]
    assert run_jobs() == [job_id]
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["progress"]["iteration"] == 60 and job["progress"]["eta_seconds"] is None
    assert job["worker"] == {"host": "test", "pid": 1}
    assert job["started_at"] and job["finished_at"] and job["error"] is None
    assert 0.0 <= job["metrics"]["test_accuracy"] <= 1.0
    assert job["metrics"]["dropout_rate"] == pytest.approx(0.3)
    attempts = client.get(f"/v1/jobs/{job_id}/attempts").json()["data"]
    assert [(a["number"], a["outcome"]) for a in attempts] == [(1, "succeeded")]


def test_list_newest_first_with_status_filter_and_cursor(client, run_jobs):
    ids = [submit(client).json()["id"] for _ in range(5)]
    first = client.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in first["data"]] == ids[::-1][:2]
    second = client.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get("/v1/jobs", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [j["id"] for j in second["data"] + third["data"]] == ids[::-1][2:]
    assert third["next_cursor"] is None
    run_jobs()
    assert client.get("/v1/jobs", params={"status": "queued"}).json()["data"] == []
    assert len(client.get("/v1/jobs", params={"status": "succeeded"}).json()["data"]) == 5


def test_cancel_a_queued_job_then_delete_it(client, run_jobs):
    job_id = submit(client).json()["id"]
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert run_jobs() == []
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404


def test_delete_refuses_active_jobs_and_removes_metrics_and_model(client, run_jobs):
    job_id = submit(client).json()["id"]
    refused = client.delete(f"/v1/jobs/{job_id}")
    assert refused.status_code == 409 and "cancel" in refused.json()["error"]["message"]
    run_jobs()
    assert client.get(f"/v1/jobs/{job_id}/model").status_code == 200
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert client.get(f"/v1/jobs/{job_id}/metrics").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/model").status_code == 404


def test_model_download_is_409_until_trained(client, run_jobs):
    import io

    import numpy as np

    job_id = submit(client).json()["id"]
    pending = client.get(f"/v1/jobs/{job_id}/model")
    assert pending.status_code == 409 and pending.json()["error"]["code"] == "conflict"
    run_jobs()
    model = client.get(f"/v1/jobs/{job_id}/model")
    assert model.headers["content-type"] == "application/octet-stream"
    with np.load(io.BytesIO(model.content), allow_pickle=False) as archive:
        assert archive["layers.0.weight"].shape == (64, 32)


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda s: s["model"]["layers"][1].update(rate=1.5), "model.layers[1].rate"),
    (lambda s: s["model"]["layers"][0].update(units="64"), "model.layers[0].units"),
    (lambda s: s["model"]["layers"][0].pop("units"), "model.layers[0].units"),
    (lambda s: s["model"]["layers"].append({"type": "lstm"}), "model.layers[3]"),
    (lambda s: s["training"].update(iterations=0), "training.iterations"),
    (lambda s: s["training"]["optimizer"].update(type="lbfgs"), "training.optimizer"),
    (lambda s: s["data"].update(dataset="mnist"), "data"),
    (lambda s: s.update(extra=1), "extra"),
    (lambda s: s.pop("name"), "name"),
])
def test_schema_errors_are_422_with_the_json_path(client, mutate, path):
    body = copy.deepcopy(DIGITS_SPEC)
    mutate(body)
    response = submit(client, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_spec"
    assert path in error_paths(response), error


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda s: s["model"].update(input_shape=[1, 8, 8]), "model.layers[0].type"),
    (lambda s: s["model"].update(input_shape=[10]), "model.input_shape"),
    (lambda s: s["model"]["layers"][2].update(units=5), "model.layers[2]"),
    (lambda s: s["model"]["layers"][2].update(activation="relu"), "training.loss"),
    (lambda s: s["model"]["layers"].insert(0, {"type": "conv2d", "filters": 2,
                                                "kernel_size": 3}), "model.layers[0].type"),
    (lambda s: s["training"].update(iterations=10**9), "training.iterations"),
    (lambda s: s["model"]["layers"].__setitem__(slice(0, 0), HUGE_LAYERS), "model.layers"),
    (lambda s: s.update(data={"dataset_id": "nope"}), "data.dataset_id"),
    (lambda s: s["training"].update(eval_every=1, iterations=1_000_000), "training.eval_every"),
])
def test_semantic_errors_are_422_with_the_json_path(client, mutate, path):
    body = copy.deepcopy(DIGITS_SPEC)
    mutate(body)
    response = submit(client, body)
    assert response.status_code == 422, response.text
    assert path in error_paths(response), response.json()


def test_unknown_job_is_404_in_the_error_shape(client):
    response = client.get("/v1/jobs/doesnotexist")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found",
                                         "message": "no job with id 'doesnotexist'",
                                         "details": []}}


def test_bad_cursor_and_limit_are_422(client):
    assert client.get("/v1/jobs", params={"cursor": "!!"}).status_code == 422
    response = client.get("/v1/jobs", params={"limit": 0})
    assert response.status_code == 422 and error_paths(response) == ["limit"]


def test_limit_is_capped_by_the_server(client, settings):
    assert settings.page_limit_max >= 1
    response = client.get("/v1/jobs", params={"limit": 10**9})
    assert response.status_code == 200


def test_per_owner_queue_limit_gives_429_with_retry_after(db, executor):
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings

    settings = Settings(database_url=str(db.url), workers=0, max_queued_jobs_per_owner=2)
    with TestClient(create_app(settings, db=db, executor=executor)) as limited:
        assert [submit(limited).status_code for _ in range(2)] == [201, 201]
        response = submit(limited)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"]["code"] == "too_many_jobs"


def test_idempotency_key_replays_the_first_response(client, executor):
    first = submit(client, **{"Idempotency-Key": "abc"})
    second = submit(client, **{"Idempotency-Key": "abc"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(client.get("/v1/jobs").json()["data"]) == 1
    other = submit(client, spec(iterations=61), **{"Idempotency-Key": "abc"})
    assert other.status_code == 422 and error_paths(other) == ["Idempotency-Key"]


def test_only_a_bad_spec_body_is_an_invalid_spec(client):
    body = copy.deepcopy(DIGITS_SPEC)
    body["training"]["iterations"] = 0
    spec_error = submit(client, body).json()["error"]
    assert spec_error["code"] == "invalid_spec" and "training.iterations" in spec_error["message"]
    # A bad list filter on the same path is a bad parameter, not a bad spec.
    listing = client.get("/v1/jobs", params={"status": "lost"})
    assert listing.status_code == 422
    assert listing.json()["error"]["code"] == "invalid_input"
    assert [d["path"] for d in listing.json()["error"]["details"]] == ["status"]
