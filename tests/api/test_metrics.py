import csv
import io

import pytest

from tests.factories import spec


@pytest.fixture
def trained(client, run_jobs):
    job_id = client.post("/v1/jobs", json=spec(iterations=120, eval_every=40)).json()["id"]
    run_jobs()
    return job_id


def test_keys_with_counts_steps_and_last_values(client, trained):
    body = client.get(f"/v1/jobs/{trained}/metrics").json()
    keys = {m["key"]: m for m in body["data"]}
    assert set(keys) == {"batch_loss", "learning_rate", "dropout_rate", "train_loss",
                         "train_accuracy", "test_loss", "test_accuracy"}
    assert keys["batch_loss"] == {**keys["batch_loss"], "count": 120, "first_step": 1,
                                  "last_step": 120}
    assert (keys["test_accuracy"]["count"], keys["test_accuracy"]["first_step"]) == (3, 40)
    job = client.get(f"/v1/jobs/{trained}").json()
    assert keys["test_accuracy"]["last_value"] == job["metrics"]["test_accuracy"]


def test_history_pages_cover_every_step_once(client, trained):
    steps, cursor = [], None
    while True:
        params = {"limit": 50} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/v1/jobs/{trained}/metrics/batch_loss", params=params).json()
        steps += [p["step"] for p in page["points"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert steps == list(range(1, 121))
    point = page["points"][-1]
    assert set(point) == {"step", "value", "timestamp"} and point["timestamp"] > 1.6e9


def test_history_step_range(client, trained):
    page = client.get(f"/v1/jobs/{trained}/metrics/batch_loss",
                      params={"start_step": 10, "end_step": 19}).json()
    assert [p["step"] for p in page["points"]] == list(range(10, 20))
    assert page["next_cursor"] is None and page["downsampled"] is False


def test_downsampled_history_keeps_first_last_and_extremes(client, trained):
    full = client.get(f"/v1/jobs/{trained}/metrics/batch_loss", params={"limit": 1000}).json()
    values = {p["step"]: p["value"] for p in full["points"]}
    page = client.get(f"/v1/jobs/{trained}/metrics/batch_loss",
                      params={"max_points": 10}).json()
    steps = [p["step"] for p in page["points"]]
    assert page["downsampled"] is True and len(steps) <= 10
    assert steps[0] == 1 and steps[-1] == 120
    assert min(values, key=values.get) in steps and max(values, key=values.get) in steps


def test_csv(client, trained):
    response = client.get(f"/v1/jobs/{trained}/metrics/test_accuracy",
                          params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["step", "value", "timestamp"]
    assert [int(r[0]) for r in rows[1:]] == [40, 80, 120]


@pytest.mark.parametrize(("params", "path"), [
    ({"limit": 0}, "limit"),
    ({"max_points": 1}, "max_points"),
    ({"start_step": -1}, "start_step"),
    ({"start_step": 10, "end_step": 5}, "end_step"),
    ({"cursor": "e30"}, "cursor"),
    ({"format": "xml"}, "format"),
    ({"max_points": 10, "cursor": "eyJhZnRlciI6MX0"}, "cursor"),
])
def test_bad_parameters_are_422_naming_the_parameter(client, trained, params, path):
    response = client.get(f"/v1/jobs/{trained}/metrics/batch_loss", params=params)
    assert response.status_code == 422
    assert path in [d["path"] for d in response.json()["error"]["details"]]


def test_unknown_key_or_job_is_404(client, trained):
    assert client.get(f"/v1/jobs/{trained}/metrics/accuracy").status_code == 404
    assert client.get("/v1/jobs/nope/metrics").status_code == 404
    assert client.get("/v1/jobs/nope/metrics/batch_loss").status_code == 404


def test_history_is_readable_while_the_job_runs(client, db, settings):
    import threading
    import time

    from service.jobs.runner import JobRunner
    from service.store import jobs as job_rows

    job_id = client.post("/v1/jobs", json=spec(iterations=100_000)).json()["id"]
    runner = JobRunner(db, settings, job_rows.WorkerIdentity(id="w", host="h", pid=2))
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        count = 0
        while count < 50 and time.monotonic() < deadline:
            keys = client.get(f"/v1/jobs/{job_id}/metrics").json()["data"]
            count = next((k["count"] for k in keys if k["key"] == "batch_loss"), 0)
            time.sleep(0.05)
        assert count >= 50
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    finally:
        client.post(f"/v1/jobs/{job_id}/cancel")
        thread.join(30)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
