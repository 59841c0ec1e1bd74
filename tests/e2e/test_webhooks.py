"""Webhooks from real `dropnet serve` processes to a real receiver on loopback: a server
SIGKILLed in the middle of a retry loses no delivery (the next server sends it, with the same
webhook-id), and a receiver that hangs does not slow training down."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook

from tests.factories import spec
from tests.webhooks.receiver import HANG, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_ENV = {"DROPNET_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "DROPNET_WEBHOOK_SECRET": SECRET,
               "DROPNET_WEBHOOK_POLL_SECONDS": "0.2", "DROPNET_WEBHOOK_BACKOFF_SECONDS": "0.2",
               "DROPNET_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5", "DROPNET_BLAS_THREADS": "1",
               "DROPNET_HEARTBEAT_SECONDS": "0.2"}


def notified(url: str, iterations: int) -> dict:
    return {**spec(iterations=iterations, eval_every=iterations), "notify": {"url": url}}


def run_seconds(job: dict) -> float:
    return (dt.datetime.fromisoformat(job["finished_at"])
            - dt.datetime.fromisoformat(job["started_at"])).total_seconds()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """{} (serve's own SQLite file) or a fresh PostgreSQL database shared by both servers."""
    if request.param == "sqlite":
        yield {}
        return
    from tests.conftest import drop_postgres, fresh_postgres

    url, name = fresh_postgres(request.getfixturevalue("postgres_template"))
    yield {"DROPNET_DATABASE_URL": url}
    drop_postgres(name)


def test_a_server_killed_mid_retry_loses_no_delivery(serve, database_env):
    with Receiver([500, HANG, 200]) as receiver:
        first = serve(env={**WEBHOOK_ENV, **database_env, "DROPNET_WORKERS": "1",
                           "DROPNET_WEBHOOK_TIMEOUT_SECONDS": "3"})
        job_id = first.client.post("/v1/jobs", json=notified(receiver.url, 40)).json()["id"]
        assert first.wait_job(job_id)["status"] == "succeeded"
        receiver.wait_for(2)  # attempt 1 answered 500; attempt 2 is in flight, unanswered
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        receiver.released.set()
        second = serve(env={**WEBHOOK_ENV, **database_env, "DROPNET_WORKERS": "0",
                            "DROPNET_WEBHOOK_TIMEOUT_SECONDS": "3"})
        requests = receiver.wait_for(3, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            [delivery] = second.client.get(f"/v1/jobs/{job_id}/deliveries").json()["data"]
            if delivery["status"] == "succeeded":
                break
            time.sleep(0.1)
        time.sleep(1.0)  # a fourth request would arrive now
        assert len(receiver.received) == 3
    assert {r.headers["webhook-id"] for r in requests} == {delivery["webhook_id"]}
    for request in requests:
        assert Webhook(SECRET).verify(request.body, request.headers)["data"]["job_id"] == job_id
    attempts = [(a["number"], a["status_code"], a["ended_at"] is None)
                for a in delivery["attempts"]]
    assert attempts == [(1, 500, False), (2, None, True), (3, 200, False)]
    assert delivery["status"] == "succeeded"


def test_a_hanging_receiver_does_not_hold_up_training(serve):
    with Receiver([HANG]) as receiver:
        server = serve(env={**WEBHOOK_ENV, "DROPNET_WORKERS": "1",
                            "DROPNET_WEBHOOK_TIMEOUT_SECONDS": "120"})
        first = server.client.post("/v1/jobs", json=notified(receiver.url, 300)).json()
        first = server.wait_job(first["id"], timeout=120)
        receiver.wait_for(1)  # its delivery now hangs, for up to 120 s
        second = server.client.post("/v1/jobs", json=notified(receiver.url, 300)).json()
        second = server.wait_job(second["id"], timeout=120)
        [hanging] = server.client.get(f"/v1/jobs/{first['id']}/deliveries").json()["data"]
        assert [a["ended_at"] for a in hanging["attempts"]] == [None]  # still hanging
    assert first["status"] == second["status"] == "succeeded"
    assert run_seconds(second) < 3 * run_seconds(first) + 3.0, (first, second)
