"""The image as `docker run` starts it: `dropnet serve` with local workers and SQLite in the
/data volume. It starts as uid 10001, migrates, answers /readyz, trains the README's
walkthrough job, serves predictions and the model, passes its own HEALTHCHECK, stops cleanly on
SIGTERM mid-job, and a new container on the same volume finishes that job from its checkpoint."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from tests.container.conftest import UID, podman, walkthrough_inputs, walkthrough_spec

pytestmark = pytest.mark.container

# The real user id of every process in the container (the image has no `ps`).
PROCESS_OWNERS = ("import glob\n"
                  "for path in glob.glob('/proc/[0-9]*/status'):\n"
                  "    print(open(path).read().split('Uid:')[1].split()[0])")
# Long enough to stop mid-job after two checkpoints, short enough for CI on 2 loaded cores.
ITERATIONS = 4000
# podman stop's grace period before SIGKILL (docker-compose.yml gives 60 s).
STOP_GRACE_SECONDS = 30


def test_the_walkthrough_trains_predicts_and_serves_its_model(containers, volume):
    container = containers(env={"DROPNET_WORKERS": "1"}, volume=volume)
    ready = container.wait_ready()
    assert ready["checks"]["migrations"]["current"] == ready["checks"]["migrations"]["head"]
    assert container.exec("id", "-u").stdout.split() == [str(UID)]
    owners = container.exec("python", "-c", PROCESS_OWNERS).stdout.split()
    assert len(owners) >= 2 and set(owners) == {str(UID)}  # the server and its worker

    response = container.client.post("/v1/jobs", json=walkthrough_spec())
    assert response.status_code == 201, response.text
    job = container.wait_job(response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["metrics"]["test_accuracy"] > 0.95

    predicted = container.client.post(f"/v1/jobs/{job['id']}/predict",
                                      json={"inputs": walkthrough_inputs()})
    assert predicted.status_code == 200, predicted.text
    body = predicted.json()
    assert len(body["predictions"]) == 1 and 0 <= body["predictions"][0] <= 9
    assert np.isclose(sum(body["probabilities"][0]), 1.0, atol=1e-5)

    model = container.client.get(f"/v1/jobs/{job['id']}/model")
    assert model.status_code == 200
    with np.load(io.BytesIO(model.content), allow_pickle=False) as archive:
        shapes = sorted(archive[name].shape for name in archive.files if archive[name].ndim == 2)
    assert shapes == [(64, 256), (256, 10)]

    health = podman("healthcheck", "run", container.name, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
    database = container.exec("stat", "-c", "%u", "/data/dropnet.db").stdout.split()
    assert database == [str(UID)]


def test_sigterm_mid_job_exits_in_time_and_a_new_container_resumes_the_job(containers, volume):
    first = containers(env={"DROPNET_WORKERS": "1"}, volume=volume)
    first.wait_ready()
    spec = walkthrough_spec(iterations=ITERATIONS, eval_every=500,
                            checkpoint={"every_iterations": 250})
    job_id = first.client.post("/v1/jobs", json=spec).json()["id"]
    running = first.wait_job(job_id, until=lambda job: (job["checkpoint_iteration"] or 0) >= 500)
    assert running["status"] == "running"

    started = time.monotonic()
    podman("stop", "--time", str(STOP_GRACE_SECONDS), first.name, timeout=STOP_GRACE_SECONDS + 30)
    stopped_after = time.monotonic() - started
    state = first.state()
    assert state["ExitCode"] == 0, first.logs()
    assert stopped_after < STOP_GRACE_SECONDS, f"podman stop took {stopped_after:.1f} s"

    second = containers(env={"DROPNET_WORKERS": "1"}, volume=volume)
    second.wait_ready()
    job = second.wait_job(job_id)
    assert job["status"] == "succeeded", job["error"]
    attempts = second.client.get(f"/v1/jobs/{job_id}/attempts").json()["data"]
    assert [attempt["outcome"] for attempt in attempts] == ["released", "succeeded"]
    assert attempts[1]["resumed_from_iteration"] >= running["checkpoint_iteration"]
    keys = {summary["key"]: summary
            for summary in second.client.get(f"/v1/jobs/{job_id}/metrics").json()["data"]}
    batch_loss = keys["batch_loss"]  # one point per iteration, each step once
    assert (batch_loss["count"], batch_loss["last_step"]) == (ITERATIONS, ITERATIONS)
