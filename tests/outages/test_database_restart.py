"""PostgreSQL restarts and stops for 20 s while two Celery workers train and a client submits,
polls and predicts: every job succeeds with the history and weights of an undisturbed run, and
during the outage the API answers 503 with Retry-After and the error shape, never 500."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from tests.e2e.test_crashes import assert_same_run, long_job
from tests.outages.test_broker_restart import wait_alive

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ITERATIONS = 3000
ROW = [[0.0] * 64]


class Poller(threading.Thread):
    """A client polling, predicting and submitting about 20 times a second; records every
    answer (status code, or the transport error's name) and every 503's headers and body."""

    def __init__(self, url: str, job_ids: list[str], trained_id: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, timeout=10)
        self.job_ids, self.trained_id = job_ids, trained_id
        self.answers: Counter[str] = Counter()
        self.unavailable: list[httpx.Response] = []
        self.slowest = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        requests = [("GET", f"/v1/jobs/{job_id}", None) for job_id in self.job_ids] + [
            ("POST", f"/v1/jobs/{self.trained_id}/predict", {"inputs": ROW}),
            ("GET", "/v1/jobs?limit=5", None)]
        while not self.stopping.is_set():
            for method, path, body in requests:
                started = time.monotonic()
                try:
                    response = self.client.request(method, path, json=body)
                except httpx.TransportError as error:
                    self.answers[type(error).__name__] += 1
                    continue
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.answers[str(response.status_code)] += 1
                if response.status_code == 503:
                    self.unavailable.append(response)
            time.sleep(0.05)
        self.client.close()


@pytest.mark.parametrize("outage", ["restart", "stop-20s"])
def test_postgres_outage_loses_nothing(serve, workers, private_redis, private_postgres, outage):
    env = {"DROPNET_DATABASE_URL": private_postgres.url, "DROPNET_BROKER_URL": private_redis.url,
           "DROPNET_EXECUTOR": "celery", "DROPNET_WORKERS": "0",
           "DROPNET_HEARTBEAT_SECONDS": "0.5", "DROPNET_POLL_SECONDS": "0.5",
           "DROPNET_LEASE_SECONDS": "5", "DROPNET_BLAS_THREADS": "1"}
    server = serve(env=env, ready=False)
    wait_alive(server)
    workers(env, concurrency=2)
    body = long_job(ITERATIONS)
    reference = server.client.post("/v1/jobs", json=body).json()["id"]
    assert server.wait_job(reference, timeout=180)["status"] == "succeeded"

    ids = [server.client.post("/v1/jobs", json=body).json()["id"] for _ in range(2)]
    deadline = time.monotonic() + 60
    while not all(server.client.get(f"/v1/jobs/{i}").json()["progress"]["iteration"] > 500
                  for i in ids):
        assert time.monotonic() < deadline, "the jobs did not get going"
        time.sleep(0.1)
    poller = Poller(server.url, ids, reference)
    poller.start()
    time.sleep(1)
    if outage == "restart":
        private_postgres.restart()
    else:
        private_postgres.stop()
        time.sleep(20)
        private_postgres.start()
    queued_after = server.client.post("/v1/jobs", json=body)
    assert queued_after.status_code == 201, queued_after.text
    ids.append(queued_after.json()["id"])
    time.sleep(2)
    poller.stopping.set()
    poller.join(30)

    for job_id in ids:
        job = server.wait_job(job_id, timeout=300)
        assert job["status"] == "succeeded", job["error"]
        assert_same_run(server, job_id, reference)
    assert not [k for k in poller.answers if k.startswith("5") and k != "503"], poller.answers
    assert not [k for k in poller.answers if not k.isdigit()], poller.answers  # no dropped line
    assert poller.slowest < 10, f"a request took {poller.slowest:.1f} s"
    if outage == "stop-20s":
        assert poller.unavailable, f"no 503 during a 20 s outage: {poller.answers}"
    for response in poller.unavailable:
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error"]["code"] == "database_unavailable"
