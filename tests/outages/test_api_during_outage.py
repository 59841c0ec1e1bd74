"""While the database is down every route that needs it answers 503 with Retry-After and the
error shape, the keys check included, and the app recovers by itself when it is back."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.store.schema import upgrade
from service.store.session import Database
from service.workers.executor import NoExecutor
from tests.factories import spec

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("keys", [False, True], ids=["open", "api-keys"])
def test_a_stopped_database_gives_503_then_recovery(private_postgres, keys):
    upgrade(private_postgres.url)
    settings = Settings(database_url=private_postgres.url, workers=0, _env_file=None,
                        api_keys="alice:secret-key" if keys else "")
    db = Database(private_postgres.url)
    headers = {"Authorization": "Bearer secret-key"} if keys else {}
    app = create_app(settings, db=db, executor=NoExecutor())
    with TestClient(app, raise_server_exceptions=False, headers=headers) as client:
        job = client.post("/v1/jobs", json=spec()).json()
        private_postgres.stop()
        requests = [("GET", "/v1/jobs", None), ("GET", f"/v1/jobs/{job['id']}", None),
                    ("POST", "/v1/jobs", spec()),
                    ("POST", f"/v1/jobs/{job['id']}/predict", {"inputs": [[0.0] * 64]}),
                    ("GET", f"/v1/jobs/{job['id']}/metrics", None)]
        for method, path, body in requests:
            response = client.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["Retry-After"] == "5"
            assert response.json()["error"]["code"] == "database_unavailable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        # The inference protocol: its own error shape, its readiness false as a 400.
        for method, path in (("GET", f"/v2/models/{job['id']}"),
                             ("POST", f"/v2/models/{job['id']}/infer")):
            response = client.request(method, path, json={"inputs": [{
                "name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]})
            assert response.status_code == 503, (path, response.text)
            assert response.headers["Retry-After"] == "5"
            assert "database is unavailable" in response.json()["error"]
        ready = client.get("/v2/health/ready")
        assert (ready.status_code, ready.json()) == (400, {"ready": False})
        assert client.get("/v2/health/live").status_code == 200
        private_postgres.start()
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
        assert client.post("/v1/jobs", json=spec()).status_code == 201
    db.dispose()
