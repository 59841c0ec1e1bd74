"""An app whose one trained job's model is in the cache, so that the prediction hot path
answers below the router: what the JSON-level attack tests send their bodies to."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.jobs.runner import JobRunner
from service.store import jobs as job_rows
from tests.api.shared_app import shared_client
from tests.factories import spec

VALID_SAMPLE = {"inputs": [[0.25] * 64]}
"""A prediction request the served model answers (one row of 64 features)."""


class Served:
    """The module's client and the job whose model is cached."""

    def __init__(self, client: TestClient, job_id: str) -> None:
        self.client = client
        self.job_id = job_id

    @property
    def predict_url(self) -> str:
        return f"/v1/jobs/{self.job_id}/predict"

    def model_lookups(self) -> int:
        """How often the model cache was asked, hits and misses: unchanged by a body that is
        refused before the hot path looks up the model."""
        models = self.client.app.state.dropnet.models  # type: ignore[attr-defined]
        return models.hits + models.misses

    def post_json(self, url: str, body: bytes) -> Any:
        """POSTs `body` as it is, declared as application/json."""
        return self.client.post(url, content=body, headers={"content-type": "application/json"})


@contextlib.contextmanager
def served_model(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A shared app on `request.param`'s backend with a 20-iteration digits job trained by an
    in-process JobRunner and its model warmed into the cache."""
    with shared_client(request, tmp_path_factory,
                       model_cache_revalidate_seconds=3600.0) as client:
        state = client.app.state.dropnet  # type: ignore[attr-defined]
        job_id = client.post("/v1/jobs", json=spec(iterations=20)).json()["id"]
        runner = JobRunner(state.db, state.settings,
                           job_rows.WorkerIdentity(id="served-model", host="test", pid=1))
        while runner.run() is not None:
            pass
        served = Served(client, job_id)
        warm = client.post(served.predict_url, json=VALID_SAMPLE)
        assert warm.status_code == 200, warm.text  # the model is cached from here on
        yield served
