"""Jobs survive crashes: killed, paused and stopped workers, restarted servers, poison jobs.

Each test runs the real `dropnet serve` (local executor) and kills real processes.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time

import numpy as np
import pytest

from tests.e2e.conftest import Server
from tests.factories import spec

FAST_RECOVERY = {"DROPNET_LEASE_SECONDS": "3", "DROPNET_HEARTBEAT_SECONDS": "0.25",
                 "DROPNET_POLL_SECONDS": "0.25", "DROPNET_BLAS_THREADS": "1"}


def long_job(iterations: int = 6000, **training) -> dict:
    return spec(iterations=iterations, eval_every=250,
                checkpoint={"every_iterations": 500, "every_seconds": 3600}, **training)


def histories(server: Server, job_id: str) -> dict[str, list[tuple[int, float]]]:
    result = {}
    keys = server.client.get(f"/v1/jobs/{job_id}/metrics").json()["data"]
    for key in (k["key"] for k in keys):
        points, cursor = [], None
        while True:
            params = {"limit": 10000, **({"cursor": cursor} if cursor else {})}
            body = server.client.get(f"/v1/jobs/{job_id}/metrics/{key}", params=params).json()
            points += [(p["step"], p["value"]) for p in body["points"]]
            if (cursor := body["next_cursor"]) is None:
                break
        result[key] = points
    return result


def weights(server: Server, job_id: str) -> dict[str, np.ndarray]:
    data = server.client.get(f"/v1/jobs/{job_id}/model").content
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.startswith("layers.")}


def assert_same_run(server: Server, job_id: str, reference_id: str) -> None:
    assert histories(server, job_id) == histories(server, reference_id)
    a, b = weights(server, job_id), weights(server, reference_id)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def wait_iteration(server: Server, job_id: str, at_least: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "running" and job["progress"]["iteration"] >= at_least:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached iteration {at_least}: {job}")


def test_sigkill_at_three_points_costs_only_time(serve):
    server = serve(env={**FAST_RECOVERY, "DROPNET_WORKERS": "1"})
    reference = server.client.post("/v1/jobs", json=long_job()).json()["id"]
    assert server.wait_job(reference)["status"] == "succeeded"

    job_id = server.client.post("/v1/jobs", json=long_job()).json()["id"]
    killed = []
    for point in (800, 2600, 4300):  # between checkpoints, each in a later attempt
        job = wait_iteration(server, job_id, point)
        os.kill(job["worker"]["pid"], signal.SIGKILL)
        killed.append(job["worker"]["pid"])
    job = server.wait_job(job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 4
    attempts = server.client.get(f"/v1/jobs/{job_id}/attempts").json()["data"]
    assert [a["outcome"] for a in attempts] == ["lost", "lost", "lost", "succeeded"]
    assert [a["worker"]["pid"] for a in attempts[:3]] == killed
    assert all(a["resumed_from_iteration"] for a in attempts[1:])
    assert_same_run(server, job_id, reference)


def test_a_paused_worker_whose_lease_was_taken_writes_nothing(serve):
    server = serve(env={**FAST_RECOVERY, "DROPNET_WORKERS": "2"})
    reference = server.client.post("/v1/jobs", json=long_job(3000)).json()["id"]
    assert server.wait_job(reference)["status"] == "succeeded"

    job_id = server.client.post("/v1/jobs", json=long_job(3000)).json()["id"]
    paused = wait_iteration(server, job_id, 700)["worker"]["pid"]
    os.kill(paused, signal.SIGSTOP)
    try:
        # The lease expires, the other worker resumes the job from its checkpoint.
        deadline = time.monotonic() + 60
        while server.client.get(f"/v1/jobs/{job_id}").json()["worker"]["pid"] == paused:
            assert time.monotonic() < deadline, "the job was never taken over"
            time.sleep(0.1)
    finally:
        os.kill(paused, signal.SIGCONT)  # it wakes up mid-job, holding a stale lease token
    job = server.wait_job(job_id)
    assert job["status"] == "succeeded", job["error"]
    time.sleep(1.0)  # give the woken worker time to try (and fail) to write
    assert_same_run(server, job_id, reference)
    outcomes = [a["outcome"] for a in server.client.get(f"/v1/jobs/{job_id}/attempts")
                .json()["data"]]
    assert outcomes == ["lost", "succeeded"]


def test_a_poison_job_fails_after_max_attempts_and_the_queue_moves_on(serve):
    server = serve(env={**FAST_RECOVERY, "DROPNET_WORKERS": "1", "DROPNET_MAX_ATTEMPTS": "3"})
    poison = server.client.post("/v1/jobs", json=long_job(1_000_000)).json()["id"]
    after = server.client.post("/v1/jobs", json=spec(iterations=200)).json()["id"]
    stop = threading.Event()

    def kill_whoever_runs_it() -> None:  # the job takes its worker down every time
        while not stop.is_set():
            job = server.client.get(f"/v1/jobs/{poison}").json()
            if job["status"] == "running" and job["progress"]["iteration"] > 50:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job["worker"]["pid"], signal.SIGKILL)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_whoever_runs_it, daemon=True)
    killer.start()
    try:
        job = server.wait_job(poison, timeout=120)
    finally:
        stop.set()
        killer.join()
    assert job["status"] == "failed" and job["attempts"] == 3
    assert "worker lost 3 times (max_attempts=3)" in job["error"]
    assert server.wait_job(after)["status"] == "succeeded"


def test_sigterm_checkpoints_releases_and_the_job_resumes(serve):
    server = serve(env={**FAST_RECOVERY, "DROPNET_WORKERS": "1"})
    reference = server.client.post("/v1/jobs", json=long_job(3000)).json()["id"]
    assert server.wait_job(reference)["status"] == "succeeded"

    job_id = server.client.post("/v1/jobs", json=long_job(3000)).json()["id"]
    pid = wait_iteration(server, job_id, 1200)["worker"]["pid"]
    sent = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while os.path.exists(f"/proc/{pid}") and _is_running(pid):
        assert time.monotonic() - sent < 5.0, "the worker did not exit within 5 s"
        time.sleep(0.02)
    job = server.wait_job(job_id)
    assert job["status"] == "succeeded", job["error"]
    attempts = server.client.get(f"/v1/jobs/{job_id}/attempts").json()["data"]
    assert [a["outcome"] for a in attempts] == ["released", "succeeded"]
    assert attempts[1]["resumed_from_iteration"] >= 1200  # checkpointed at release
    assert_same_run(server, job_id, reference)


def _is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
def test_restarting_the_server_loses_no_job(serve, stop_signal):
    env = {**FAST_RECOVERY, "DROPNET_WORKERS": "1"}
    server = serve(env=env)
    ids = [server.client.post("/v1/jobs", json=long_job(2500, seed=n)).json()["id"]
           for n in range(3)]
    wait_iteration(server, ids[0], 600)
    if stop_signal == signal.SIGKILL:  # the whole process group, workers included
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    else:
        assert server.stop(stop_signal) == 0
    restarted = serve(env=env)
    jobs = [restarted.wait_job(job_id) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    for job_id in ids:
        steps = [s for s, _ in histories(restarted, job_id)["batch_loss"]]
        assert steps == list(range(1, 2501))


def test_sqlite_under_contention_never_reports_database_is_locked(serve):
    server = serve(env={**FAST_RECOVERY, "DROPNET_WORKERS": "4",
                        "DROPNET_HEARTBEAT_SECONDS": "0.05"})
    small = spec(iterations=3000, eval_every=1,
                 checkpoint={"every_iterations": 100, "every_seconds": 1})
    statuses: list[int] = []
    stop = threading.Event()

    def api_traffic() -> None:
        while not stop.is_set():
            created = server.client.post("/v1/jobs", json=spec(iterations=30))
            statuses.append(created.status_code)
            job_id = created.json()["id"]
            statuses.append(server.client.post(f"/v1/jobs/{job_id}/cancel").status_code)
            statuses.append(server.client.get("/v1/jobs", params={"limit": 5}).status_code)

    ids = [server.client.post("/v1/jobs", json=small).json()["id"] for _ in range(4)]
    traffic = [threading.Thread(target=api_traffic) for _ in range(3)]
    for thread in traffic:
        thread.start()
    try:
        jobs = [server.wait_job(job_id, timeout=300) for job_id in ids]
    finally:
        stop.set()
        for thread in traffic:
            thread.join()
    assert [job["status"] for job in jobs] == ["succeeded"] * 4, [j["error"] for j in jobs]
    assert len(statuses) > 30 and all(code < 500 for code in statuses)
    assert set(statuses) <= {200, 201, 202, 409}
    assert "database is locked" not in server.log.read_text()


def test_workers_of_a_killed_server_release_their_jobs_and_exit(serve):
    from tests.e2e.conftest import children

    env = {**FAST_RECOVERY, "DROPNET_WORKERS": "1"}
    server = serve(env=env)
    job_id = server.client.post("/v1/jobs", json=long_job(20_000)).json()["id"]
    wait_iteration(server, job_id, 500)
    workers = [pid for pid in children(server.process.pid) if _is_running(pid)]
    server.process.kill()  # the server alone: its worker processes are orphaned
    server.process.wait()
    deadline = time.monotonic() + 10
    while any(_is_running(pid) for pid in workers):
        assert time.monotonic() < deadline, "orphaned workers kept running"
        time.sleep(0.05)
    restarted = serve(env=env)
    job = restarted.wait_job(job_id)
    assert job["status"] == "succeeded"
    outcomes = [a["outcome"] for a in restarted.client.get(f"/v1/jobs/{job_id}/attempts")
                .json()["data"]]
    assert outcomes == ["released", "succeeded"]
