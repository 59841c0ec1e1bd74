"""The prediction hot path answers exactly as the route does, and only when it may."""

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.factories import spec

SAMPLE = {"inputs": [[0.25] * 64]}


@pytest.fixture
def trained(client, run_jobs):
    job_id = client.post("/v1/jobs", json=spec(iterations=50)).json()["id"]
    run_jobs()
    return job_id


def predict(client, job_id, body=SAMPLE, **kwargs):
    models = client.app.state.dropnet.models
    before = models.hits + models.misses
    response = client.post(f"/v1/jobs/{job_id}/predict", json=body, **kwargs)
    return response, models.hits + models.misses - before


def test_the_fast_path_answers_like_the_route(client, trained):
    first, lookups = predict(client, trained)  # not cached yet: the route loads the model
    assert first.status_code == 200 and lookups == 2
    second, lookups = predict(client, trained)  # cached: answered below the router
    assert lookups == 1
    assert second.status_code == 200 and second.json() == first.json()
    assert second.headers["content-type"] == "application/json"


# Lookups: the fast path looks the model up once; a route that gets as far as the model looks
# it up again, one that refuses the body first does not.
@pytest.mark.parametrize(("body", "status", "path", "lookups"), [
    ({"inputs": [[0.25] * 63]}, 422, "inputs", 2),
    ({"inputs": [[True] * 64]}, 422, "inputs", 1),
    ({"inputs": [[0.25] * 64], "extra": 1}, 422, "extra", 1),
    ({"inputs": [[0.25] * 64] * 100}, 200, None, 2),  # large: the route runs it in a thread
])
def test_anything_unusual_goes_to_the_route(client, trained, body, status, path, lookups):
    predict(client, trained)
    response, looked_up = predict(client, trained, body)
    assert response.status_code == status and looked_up == lookups
    if path is not None:
        assert response.json()["error"]["details"][0]["path"].startswith(path)


def test_query_parameters_are_the_routes_to_refuse(client, trained):
    predict(client, trained)
    response = client.post(f"/v1/jobs/{trained}/predict?debug=1", json=SAMPLE)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "debug"


def test_keys_and_owners_are_enforced_on_the_fast_path(db, run_jobs):
    settings = Settings(database_url=str(db.url), workers=0, api_keys="ann:key-a,bob:key-b")
    with TestClient(create_app(settings, db=db)) as client:
        ann = {"Authorization": "Bearer key-a"}
        job_id = client.post("/v1/jobs", json=spec(iterations=50), headers=ann).json()["id"]
        run_jobs()
        assert predict(client, job_id, headers=ann)[0].status_code == 200
        ok, lookups = predict(client, job_id, headers=ann)
        assert ok.status_code == 200 and lookups == 1
        other, _ = predict(client, job_id, headers={"Authorization": "Bearer key-b"})
        assert other.status_code == 404
        missing, _ = predict(client, job_id)
        assert missing.status_code == 401
        wrong, _ = predict(client, job_id, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


def test_request_metrics_label_the_fast_path_with_the_route(client, trained):
    from service.telemetry import REQUEST_SECONDS

    predict(client, trained)
    label = ("POST", "/v1/jobs/{job_id}/predict", "200")
    before = REQUEST_SECONDS.labels(*label)._sum.get()
    predict(client, trained)
    assert REQUEST_SECONDS.labels(*label)._sum.get() > before
