"""POST /v1/jobs/{id}/predict with "mc_samples": Monte-Carlo dropout through the API (both
databases): the mean's classes and probabilities plus per-row uncertainty, seeded."""

import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.engine.datasets import load_builtin
from service.workers.executor import NoExecutor
from tests.factories import spec


@pytest.fixture
def trained(client, run_jobs):
    job_id = client.post("/v1/jobs", json=spec(iterations=300)).json()["id"]
    run_jobs()
    return job_id


ROWS = load_builtin("digits").x_test[:12].tolist()


def test_mc_dropout_adds_uncertainty_per_row(client, trained):
    response = client.post(f"/v1/jobs/{trained}/predict",
                           json={"inputs": ROWS, "mc_samples": 50, "seed": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mc_samples"] == 50
    mean, std = np.array(body["probabilities"]), np.array(body["std"])
    assert mean.shape == std.shape == (12, 10)
    assert np.allclose(mean.sum(axis=1), 1.0)
    assert body["predictions"] == mean.argmax(axis=1).tolist()
    entropy, information = np.array(body["entropy"]), np.array(body["mutual_information"])
    assert entropy.shape == information.shape == (12,)
    assert (information >= -1e-12).all() and (information <= entropy + 1e-12).all()
    assert (entropy <= math.log(10) + 1e-12).all()
    assert (std > 0).any(), "dropout is on: the samples differ"


def test_same_seed_same_answer_other_seed_other_samples(client, trained):
    def ask(seed):
        return client.post(f"/v1/jobs/{trained}/predict",
                           json={"inputs": ROWS, "mc_samples": 20, "seed": seed}).json()

    assert ask(1) == ask(1)
    assert ask(1)["std"] != ask(2)["std"]


def test_mc_mean_agrees_with_the_deterministic_prediction(client, trained):
    plain = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": ROWS}).json()
    assert set(plain) == {"predictions", "probabilities"}
    mc = client.post(f"/v1/jobs/{trained}/predict",
                     json={"inputs": ROWS, "mc_samples": 200, "seed": 0}).json()
    agree = np.mean(np.array(plain["predictions"]) == np.array(mc["predictions"]))
    assert agree >= 0.8


@pytest.mark.parametrize("body, path", [
    ({"mc_samples": 1001}, "mc_samples"), ({"mc_samples": -1}, "mc_samples"),
    ({"mc_samples": 2.5}, "mc_samples"), ({"mc_samples": "10"}, "mc_samples"),
    ({"seed": -1, "mc_samples": 5}, "seed"), ({"seed": 2**32, "mc_samples": 5}, "seed"),
])
def test_bad_mc_fields_are_422_naming_the_field(client, trained, body, path):
    response = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": ROWS, **body})
    assert response.status_code == 422
    assert [d["path"] for d in response.json()["error"]["details"]] == [path]


def test_rows_times_samples_is_limited(db, database_url, run_jobs):
    settings = Settings(database_url=database_url, workers=0, max_mc_forwards=100,
                        _env_file=None)
    with TestClient(create_app(settings, db=db, executor=NoExecutor()),
                    raise_server_exceptions=False) as client:
        job_id = client.post("/v1/jobs", json=spec(iterations=50)).json()["id"]
        run_jobs()
        ok = client.post(f"/v1/jobs/{job_id}/predict",
                         json={"inputs": ROWS[:2], "mc_samples": 50})
        assert ok.status_code == 200
        refused = client.post(f"/v1/jobs/{job_id}/predict",
                              json={"inputs": ROWS[:3], "mc_samples": 50})
        assert refused.status_code == 422
        detail = refused.json()["error"]["details"][0]
        assert detail["path"] == "mc_samples" and detail["received"] == 150
