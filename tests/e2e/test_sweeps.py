"""A sweep through a real `dropnet serve` with 2 local workers: max_concurrent holds."""

from __future__ import annotations

import copy
import datetime as dt
import time

from tests.factories import DIGITS_SPEC


def test_two_local_workers_never_run_more_than_max_concurrent_runs(serve) -> None:
    server = serve(env={"DROPNET_WORKERS": "2", "DROPNET_POLL_SECONDS": "0.2",
                        "DROPNET_BLAS_THREADS": "1"})
    base = copy.deepcopy(DIGITS_SPEC)
    base["training"].update(iterations=150, eval_every=50)
    created = server.client.post("/v1/sweeps", json={
        "name": "held", "base": base, "max_concurrent": 1,
        "parameters": {"training.seed": [1, 2, 3]}})
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        sweep = server.client.get(f"/v1/sweeps/{sweep_id}").json()
        assert sweep["counts"].get("running", 0) <= 1, sweep["counts"]
        if sweep["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert sweep["counts"] == {"succeeded": 3}, server.log.read_text()[-3000:]
    spans = []
    for run in sweep["runs"]:
        for attempt in server.client.get(f"/v1/jobs/{run['job_id']}/attempts").json()["data"]:
            spans.append((dt.datetime.fromisoformat(attempt["started_at"]),
                          dt.datetime.fromisoformat(attempt["ended_at"]),
                          attempt["worker"]["pid"]))
    spans.sort()
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, spans  # one run at a time, even with two idle workers
