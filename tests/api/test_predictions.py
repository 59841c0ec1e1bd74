import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.engine.datasets import load_builtin
from service.workers.executor import NoExecutor
from tests.factories import spec


@pytest.fixture
def trained(client, run_jobs):
    job_id = client.post("/v1/jobs", json=spec(iterations=300)).json()["id"]
    run_jobs()
    return job_id


def test_predicts_classes_and_probabilities(client, trained):
    digits = load_builtin("digits")
    rows = digits.x_test[:20]
    response = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": rows.tolist()})
    assert response.status_code == 200
    body = response.json()
    assert len(body["predictions"]) == 20 and len(body["probabilities"]) == 20
    for label, probabilities in zip(body["predictions"], body["probabilities"], strict=True):
        assert len(probabilities) == 10
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
        assert label == max(range(10), key=probabilities.__getitem__)
    accuracy = sum(p == y for p, y in zip(body["predictions"], digits.y_test[:20], strict=True))
    assert accuracy >= 14


def test_the_cache_answers_without_the_database(client, trained):
    first = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": [[0.0] * 64]})
    models = client.app.state.dropnet.models
    hits = models.hits
    second = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": [[0.0] * 64]})
    assert first.json() == second.json()
    assert models.hits == hits + 1 and len(models) == 1


def test_409_while_no_model(client):
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    response = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": [[0.0] * 64]})
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(("inputs", "message"), [
    ([[0.0] * 63], "input shape"),
    ([[0.0] * 64, [0.0] * 63], "input shape"),
    ([[[[0.0] * 8] * 8]], "input shape"),
    ([[1e300] * 64], "finite"),
])
def test_bad_inputs_are_422(client, trained, inputs, message):
    response = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": inputs})
    assert response.status_code == 422
    error = response.json()["error"]
    assert message in error["message"] and error["details"][0]["path"] == "inputs"


@pytest.mark.parametrize("body", [{}, {"inputs": []}, {"inputs": "x"}, {"inputs": [["a"]]},
                                  {"inputs": [[0.0]], "extra": 1}])
def test_malformed_bodies_are_422(client, trained, body):
    response = client.post(f"/v1/jobs/{trained}/predict", json=body)
    assert response.status_code == 422


def test_unknown_job_is_404(client):
    assert client.post("/v1/jobs/nope/predict", json={"inputs": [[0.0]]}).status_code == 404


def test_deleting_a_job_evicts_its_model(client, trained):
    client.post(f"/v1/jobs/{trained}/predict", json={"inputs": [[0.0] * 64]})
    assert client.delete(f"/v1/jobs/{trained}").status_code == 204
    response = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": [[0.0] * 64]})
    assert response.status_code == 404


@pytest.fixture
def replica(settings, db):
    """A second API process on the same database that checks its cached models every time."""
    replica_settings = settings.model_copy(update={"model_cache_revalidate_seconds": 0})
    app = create_app(replica_settings, db=db, executor=NoExecutor())
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_model_stays_cached_while_the_database_confirms_it(replica, trained):
    row = {"inputs": [[0.0] * 64]}
    first = replica.post(f"/v1/jobs/{trained}/predict", json=row)
    models = replica.app.state.dropnet.models
    entry = models.get(trained)
    checked = entry.checked_at
    second = replica.post(f"/v1/jobs/{trained}/predict", json=row)
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    assert models.get(trained) is entry and entry.checked_at > checked  # checked, not reloaded


def test_a_job_deleted_through_another_api_process_leaves_this_ones_cache(client, replica,
                                                                        trained):
    row = {"inputs": [[0.0] * 64]}
    assert replica.post(f"/v1/jobs/{trained}/predict", json=row).status_code == 200
    assert client.delete(f"/v1/jobs/{trained}").status_code == 204
    response = replica.post(f"/v1/jobs/{trained}/predict", json=row)
    assert response.status_code == 404, response.text
    assert replica.app.state.dropnet.models.get(trained) is None


def test_another_owner_probing_a_cached_model_does_not_evict_it(replica, trained):
    row = {"inputs": [[0.0] * 64]}
    assert replica.post(f"/v1/jobs/{trained}/predict", json=row).status_code == 200
    entry = replica.app.state.dropnet.models.get(trained)
    entry.owner = "someone-else"  # as if another key's owner had loaded it
    assert replica.post(f"/v1/jobs/{trained}/predict", json=row).status_code == 404
    assert replica.app.state.dropnet.models.get(trained) is entry


def test_the_api_process_predicts_on_the_configured_blas_threads(settings):
    from threadpoolctl import threadpool_info

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    before = blas_threads()
    settings = settings.model_copy(update={"serving_blas_threads": 1})
    with TestClient(create_app(settings, executor=NoExecutor())) as client:
        assert client.get("/healthz").status_code == 200
        assert blas_threads() == {1}
    assert blas_threads() == before  # restored when the app stops
