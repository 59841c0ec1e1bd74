"""Scale-out with real services: PostgreSQL, Redis, `dropnet serve` with the Celery executor and
`dropnet worker` processes."""

import io
import os
import signal
import time

import numpy as np
import pytest

from tests.factories import spec

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def job_spec(iterations: int = 300, **training) -> dict:
    return spec(iterations=iterations, eval_every=50, **training)


def full_history(server, job_id: str, key: str) -> list[tuple[int, float]]:
    points, cursor = [], None
    while True:
        params = {"limit": 5000, **({"cursor": cursor} if cursor else {})}
        body = server.client.get(f"/v1/jobs/{job_id}/metrics/{key}", params=params).json()
        points += [(p["step"], p["value"]) for p in body["points"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return points


def all_histories(server, job_id: str) -> dict[str, list[tuple[int, float]]]:
    keys = [m["key"] for m in server.client.get(f"/v1/jobs/{job_id}/metrics").json()["data"]]
    return {key: full_history(server, job_id, key) for key in keys}


def test_two_celery_workers_run_eight_jobs_with_complete_histories(serve, workers, scale_env):
    first, second = workers(scale_env), workers(scale_env)
    server = serve(env=scale_env)
    ids = [server.client.post("/v1/jobs", json=job_spec(seed=n)).json()["id"] for n in range(8)]
    jobs = [server.wait_job(job_id, timeout=240) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 8, [j["error"] for j in jobs]
    consumers = {pid: worker for worker in (first, second) for pid in worker.consumer_pids()}
    ran = {consumers[job["worker"]["pid"]] for job in jobs}
    assert ran == {first, second}, "both dropnet worker processes ran jobs"
    for job_id in ids:
        steps = [step for step, _ in full_history(server, job_id, "batch_loss")]
        assert steps == list(range(1, 301))
        attempts = server.client.get(f"/v1/jobs/{job_id}/attempts").json()["data"]
        assert [a["outcome"] for a in attempts] == ["succeeded"]
    ready = server.client.get("/readyz").json()["checks"]["workers"]
    assert ready["broker"] is True and len(ready["workers_seen"]) == 2


def test_cancel_a_job_running_on_a_celery_worker(serve, workers, scale_env):
    workers(scale_env)
    server = serve(env=scale_env)
    job_id = server.client.post("/v1/jobs", json=job_spec(iterations=1_000_000)).json()["id"]
    running = server.wait_job(job_id, statuses=("running",), timeout=60)
    deadline = time.monotonic() + 30
    while server.client.get(f"/v1/jobs/{job_id}").json()["progress"]["iteration"] < 100:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert server.client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    cancelled = server.wait_job(job_id, timeout=30)
    assert cancelled["status"] == "cancelled"
    steps = [step for step, _ in full_history(server, job_id, "batch_loss")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 100
    assert cancelled["worker"] == running["worker"]


def test_local_and_celery_executors_give_bit_identical_metrics(serve, workers, scale_env,
                                                               tmp_path):
    body = job_spec(iterations=400, seed=7)
    local = serve(env={"DROPNET_WORKERS": "1", "DROPNET_BLAS_THREADS": "1",
                       "DROPNET_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}"})
    local_id = local.client.post("/v1/jobs", json=body).json()["id"]
    assert local.wait_job(local_id)["status"] == "succeeded"

    workers(scale_env)
    remote = serve(env=scale_env)
    remote_id = remote.client.post("/v1/jobs", json=body).json()["id"]
    assert remote.wait_job(remote_id, timeout=120)["status"] == "succeeded"

    assert all_histories(local, local_id) == all_histories(remote, remote_id)
    def weights(server, job_id):
        data = server.client.get(f"/v1/jobs/{job_id}/model").content
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files if k.startswith("layers.")}

    a, b = weights(local, local_id), weights(remote, remote_id)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_killed_celery_worker_costs_only_time(serve, workers, scale_env):
    from tests.e2e.test_crashes import assert_same_run, long_job, wait_iteration

    env = {**scale_env, "DROPNET_LEASE_SECONDS": "3", "DROPNET_HEARTBEAT_SECONDS": "0.25",
           "DROPNET_POLL_SECONDS": "0.25"}
    workers(env)
    server = serve(env=env)
    reference = server.client.post("/v1/jobs", json=long_job(4000)).json()["id"]
    assert server.wait_job(reference, timeout=120)["status"] == "succeeded"
    job_id = server.client.post("/v1/jobs", json=long_job(4000)).json()["id"]
    for point in (900, 2700):
        job = wait_iteration(server, job_id, point)
        os.kill(job["worker"]["pid"], signal.SIGKILL)  # the consumer running it
    job = server.wait_job(job_id, timeout=180)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 3
    assert_same_run(server, job_id, reference)


def test_a_duplicate_delivery_is_a_no_op(serve, workers, scale_env):
    from service.config import Settings
    from service.workers.celery_app import enqueue, make_celery

    workers(scale_env)
    server = serve(env=scale_env)
    job_id = server.client.post("/v1/jobs", json=job_spec()).json()["id"]
    assert server.wait_job(job_id, timeout=120)["status"] == "succeeded"
    app = make_celery(Settings(broker_url=scale_env["DROPNET_BROKER_URL"]))
    for _ in range(3):
        enqueue(app, job_id)
    time.sleep(3)
    job = server.client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert [step for step, _ in full_history(server, job_id, "batch_loss")] == list(
        range(1, 301))


def test_sigterm_to_a_celery_worker_hands_its_job_to_another(serve, workers, scale_env):
    from tests.e2e.test_crashes import wait_iteration

    env = {**scale_env, "DROPNET_HEARTBEAT_SECONDS": "0.25"}
    first = workers(env)
    server = serve(env=env)
    job_id = server.client.post("/v1/jobs", json=job_spec(iterations=6000)).json()["id"]
    wait_iteration(server, job_id, 1000)
    second = workers(env)
    sent = time.monotonic()
    assert first.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - sent < 10
    job = server.wait_job(job_id, timeout=120)
    assert job["status"] == "succeeded", job["error"]
    assert job["worker"]["pid"] in second.consumer_pids()
    attempts = server.client.get(f"/v1/jobs/{job_id}/attempts").json()["data"]
    assert [a["outcome"] for a in attempts] == ["released", "succeeded"]
    assert [step for step, _ in full_history(server, job_id, "batch_loss")] == list(
        range(1, 6001))


def test_doorbells_lost_with_the_broker_are_rung_again(serve, workers, scale_env):
    """Jobs accepted while no consumer ran, then every waiting message dropped (what a Redis
    restart without persistence does): each job still runs, rung again from the jobs table."""
    import redis

    from tests.conftest import REDIS_URL

    server = serve(env=scale_env, ready=False)  # not ready: no worker is seen yet
    deadline = time.monotonic() + 60
    while not server.alive():
        assert time.monotonic() < deadline, server.log.read_text()[-4000:]
        time.sleep(0.1)
    ids = [server.client.post("/v1/jobs", json=job_spec(seed=n)).json()["id"] for n in range(3)]
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    broker.close()
    workers(scale_env)
    jobs = [server.wait_job(job_id, timeout=120) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3, [j["error"] for j in jobs]
    for job_id in ids:
        assert [step for step, _ in full_history(server, job_id, "batch_loss")] == list(
            range(1, 301))
