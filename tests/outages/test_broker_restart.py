"""The Celery broker (Redis without persistence) restarts with queued and running jobs: no job
is lost, each history is complete, and a job submitted while Redis was down still runs."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_celery import full_history
from tests.factories import spec

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ITERATIONS = 1500


def wait_alive(server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.alive():
        assert time.monotonic() < deadline, server.log.read_text()[-4000:]
        time.sleep(0.1)


def test_a_redis_restart_loses_no_job(serve, workers, private_redis, private_postgres):
    env = {"DROPNET_DATABASE_URL": private_postgres.url, "DROPNET_BROKER_URL": private_redis.url,
           "DROPNET_EXECUTOR": "celery", "DROPNET_WORKERS": "0",
           "DROPNET_HEARTBEAT_SECONDS": "0.5", "DROPNET_POLL_SECONDS": "0.5",
           "DROPNET_BLAS_THREADS": "1"}
    server = serve(env=env, ready=False)
    wait_alive(server)
    workers(env, concurrency=2)
    body = spec(iterations=ITERATIONS, eval_every=100)
    ids = [server.client.post("/v1/jobs", json={**body, "name": f"job-{n}"}).json()["id"]
           for n in range(4)]
    deadline = time.monotonic() + 60
    while sum(server.client.get(f"/v1/jobs/{i}").json()["status"] == "running" for i in ids) < 2:
        assert time.monotonic() < deadline, "two jobs never ran at once"
        time.sleep(0.1)

    private_redis.stop()  # every waiting doorbell is gone with it
    time.sleep(2)
    during = server.client.post("/v1/jobs", json={**body, "name": "while-redis-was-down"})
    assert during.status_code == 201, during.text
    ids.append(during.json()["id"])
    private_redis.start()

    jobs = [server.wait_job(job_id, timeout=240) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 5, [j["error"] for j in jobs]
    for job_id in ids:
        steps = [step for step, _ in full_history(server, job_id, "batch_loss")]
        assert steps == list(range(1, ITERATIONS + 1))
