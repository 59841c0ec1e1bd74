"""Job and sweep event streams against a real uvicorn server, on SQLite and PostgreSQL: order
and payloads, Last-Event-ID resume mid-job, since=now, keep-alive comments, errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from threading import Thread
from typing import Any

import httpx

from tests.events.conftest import LiveServer
from tests.events.sse import Comment, Event, parse, steps_seen
from tests.factories import spec

FINAL = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
RUNNING_SPEC = spec(iterations=5000, eval_every=250)


def stream(client: httpx.Client, path: str, **kwargs: Any) -> Iterator[Event | Comment]:
    with client.stream("GET", path, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield from parse(response.iter_lines())


def until_end(items: Iterator[Event | Comment]) -> list[Event]:
    events = [item for item in items if isinstance(item, Event)]
    assert events and events[-1].type == "end", events[-3:]
    return events


def history(client: httpx.Client, job_id: str) -> dict[tuple[str, int], float]:
    """Every stored point of the job, from the metrics API."""
    stored = {}
    for key in [k["key"] for k in client.get(f"/v1/jobs/{job_id}/metrics").json()["data"]]:
        body = client.get(f"/v1/jobs/{job_id}/metrics/{key}", params={"limit": 10000}).json()
        assert body["next_cursor"] is None
        stored.update({(key, p["step"]): p["value"] for p in body["points"]})
    return stored


def assert_every_point_once(events: list[Event], stored: dict[tuple[str, int], float]) -> None:
    seen = steps_seen(events)
    assert len(seen) == len(set(seen)), "a point arrived twice"
    assert set(seen) == set(stored), "points missing or unknown"
    values = {(p["key"], p["step"]): p["value"] for e in events if e.type == "metrics"
              for p in e.data["points"]}
    assert values == stored


def test_a_job_streams_status_progress_metrics_and_end_in_order(
        live: LiveServer, train: Callable[[], Thread]) -> None:
    with live.client() as client:
        job_id = client.post("/v1/jobs", json=RUNNING_SPEC).json()["id"]
        items = stream(client, f"/v1/jobs/{job_id}/events")
        first = next(items)
        assert isinstance(first, Event) and first.type == "status"
        assert first.data == {"status": "queued", "attempts": 0, "error": None}
        train()
        events = [first, *until_end(items)]
        job = client.get(f"/v1/jobs/{job_id}").json()
        stored = history(client, job_id)

    kinds = [e.type for e in events]
    assert [e.data["status"] for e in events if e.type == "status"] == \
        ["queued", "running", "succeeded"]
    assert kinds.index("metrics") > kinds.index("status", 1)  # metrics after running
    assert kinds[-2:] == ["status", "end"]
    assert events[-1].data == {"status": "succeeded", "attempts": 1, "error": None,
                               "metrics": job["metrics"]}
    assert_every_point_once(events, stored)
    steps = [p["step"] for e in events if e.type == "metrics" for p in e.data["points"]]
    assert steps == sorted(steps)
    point = next(e for e in events if e.type == "metrics").data["points"][0]
    assert set(point) == {"key", "step", "value", "timestamp"}
    progress = [e.data for e in events if e.type == "progress"]
    assert progress, kinds
    assert set(progress[0]) == {"iteration", "total", "iterations_per_second", "eta_seconds"}
    assert all(p["total"] == 5000 and 0 < p["iteration"] <= 5000 for p in progress)
    iterations = [p["iteration"] for p in progress]
    assert iterations == sorted(set(iterations))
    assert len({e.id for e in events}) == len(events), "ids repeat"


def test_progress_comes_at_most_twice_a_second(live: LiveServer,
                                               train: Callable[[], Thread]) -> None:
    with live.client() as client:
        job_id = client.post("/v1/jobs", json=RUNNING_SPEC).json()["id"]
        train()
        arrivals = [time.monotonic() for item in stream(client, f"/v1/jobs/{job_id}/events")
                    if isinstance(item, Event) and item.type == "progress"]
    assert len(arrivals) >= 2
    # 0.5 s apart when sent; counted over the whole run, since the wire may bunch a pair.
    assert len(arrivals) <= 2 * (arrivals[-1] - arrivals[0]) + 2, arrivals


def test_last_event_id_resumes_mid_job_with_every_step_once(
        live: LiveServer, train: Callable[[], Thread]) -> None:
    with live.client() as client:
        job_id = client.post("/v1/jobs", json=RUNNING_SPEC).json()["id"]
        train()
        first: list[Event] = []
        for item in stream(client, f"/v1/jobs/{job_id}/events"):
            if isinstance(item, Event):
                first.append(item)
                if item.type == "metrics" and item.data["points"][-1]["step"] >= 500:
                    break  # disconnect in the middle of the job
        time.sleep(0.3)
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
        rest = until_end(stream(client, f"/v1/jobs/{job_id}/events",
                                headers={"Last-Event-ID": first[-1].id}))
        stored = history(client, job_id)
    assert rest[0].type in ("metrics", "progress")
    assert_every_point_once(first + rest, stored)
    statuses = [e.data["status"] for e in first + rest if e.type == "status"]
    assert statuses == ["queued", "running", "succeeded"]


def test_a_stream_opened_after_the_end_replays_everything_and_resuming_after_end_is_204(
        live: LiveServer, train: Callable[[], Thread]) -> None:
    with live.client() as client:
        job_id = client.post("/v1/jobs", json=spec(iterations=300, eval_every=100)).json()["id"]
        train().join(60)
        events = until_end(stream(client, f"/v1/jobs/{job_id}/events"))
        assert_every_point_once(events, history(client, job_id))
        again = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": events[-1].id})
        assert again.status_code == 204 and again.content == b""
        # Resuming from any event gives exactly the events after it.
        middle = len(events) // 2
        tail = until_end(stream(client, f"/v1/jobs/{job_id}/events",
                                headers={"Last-Event-ID": events[middle].id}))
        assert [(e.type, e.data) for e in tail] == [(e.type, e.data) for e in events[middle + 1:]]


def test_since_now_skips_the_backlog(live: LiveServer, train: Callable[[], Thread]) -> None:
    with live.client() as client:
        job_id = client.post("/v1/jobs", json=RUNNING_SPEC).json()["id"]
        train()
        deadline = time.monotonic() + 60
        while (job := client.get(f"/v1/jobs/{job_id}").json())["progress"]["iteration"] < 300:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        events = until_end(stream(client, f"/v1/jobs/{job_id}/events",
                                  params={"since": "now"}))
        reached = job["progress"]["iteration"]
    steps = [p["step"] for e in events if e.type == "metrics" for p in e.data["points"]]
    assert steps and min(steps) > reached
    assert [e.data["status"] for e in events if e.type == "status"] == ["succeeded"]


def test_an_idle_stream_gets_keep_alive_comments(live: LiveServer) -> None:
    with live.client() as client:
        job_id = client.post("/v1/jobs", json=RUNNING_SPEC).json()["id"]  # nobody trains it
        started = time.monotonic()
        items = stream(client, f"/v1/jobs/{job_id}/events")
        assert isinstance(next(items), Event)  # queued
        comments = []
        for item in items:
            assert isinstance(item, Comment), item
            comments.append((item.text, time.monotonic() - started))
            if len(comments) == 3:
                break
    assert [text for text, _ in comments] == ["keep-alive"] * 3
    assert comments[-1][1] < 3.0  # every 0.2 s here (DROPNET_EVENTS_KEEPALIVE_SECONDS)


def test_bad_last_event_id_since_and_unknown_ids_are_json_errors(live: LiveServer) -> None:
    with live.client() as client:
        job_id = client.post("/v1/jobs", json=RUNNING_SPEC).json()["id"]
        for bad in ("abc", "1.2", "1.2.3.4", "-1.0.0", "1.2.x"):
            response = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": bad})
            assert response.status_code == 422, bad
            detail = response.json()["error"]["details"][0]
            assert (detail["path"], detail["received"]) == ("Last-Event-ID", bad)
        response = client.get(f"/v1/jobs/{job_id}/events", params={"since": "yesterday"})
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["path"] == "since"
        for path in (f"/v1/jobs/{'f' * 32}/events", f"/v1/sweeps/{'f' * 32}/events"):
            response = client.get(path)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"


def test_streams_beyond_the_limit_get_503(events_settings: Any, db: Any) -> None:
    from tests.events.conftest import start_server

    servers = start_server(events_settings.model_copy(update={"events_max_streams": 2}), db)
    server = next(servers)
    try:
        with server.client() as client:
            job_id = client.post("/v1/jobs", json=RUNNING_SPEC).json()["id"]
            open_ = [stream(client, f"/v1/jobs/{job_id}/events") for _ in range(2)]
            for items in open_:
                assert isinstance(next(items), Event)
            refused = client.get(f"/v1/jobs/{job_id}/events")
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "too_many_streams"
            assert "Retry-After" in refused.headers
            for items in open_:
                items.close()
    finally:
        next(servers, None)


def test_a_sweep_streams_each_runs_status_and_final_metrics_then_end(
        live: LiveServer, train: Callable[[], Thread]) -> None:
    with live.client() as client:
        sweep = client.post("/v1/sweeps", json={
            "name": "events", "base": spec(iterations=200, eval_every=100),
            "parameters": {"training.seed": [1, 2]}}).json()
        items = stream(client, f"/v1/sweeps/{sweep['id']}/events")
        queued = [next(items), next(items)]
        train()
        events = [*queued, *until_end(items)]
        runs = {run["job_id"]: run for run in client.get(f"/v1/sweeps/{sweep['id']}").json()
                ["runs"]}
    assert {e.data["job_id"] for e in queued} == set(runs)
    assert all(e.type == "run" and e.data["status"] == "queued" and e.data["final"] is None
               for e in queued)
    per_run: dict[str, list[str]] = {}
    for event in events[:-1]:
        assert event.type == "run"
        per_run.setdefault(event.data["job_id"], []).append(event.data["status"])
        assert event.data["parameters"] == runs[event.data["job_id"]]["parameters"]
        if event.data["status"] == "succeeded":
            run = runs[event.data["job_id"]]
            assert event.data["final"] == {key: run[key] for key in FINAL}
    assert per_run == {job_id: ["queued", "running", "succeeded"] for job_id in runs}
    assert events[-1].type == "end"
    assert events[-1].data == {"status": "succeeded", "counts": {"succeeded": 2}}
    # Resuming from the middle gives the rest exactly.
    with live.client() as client:
        tail = until_end(stream(client, f"/v1/sweeps/{sweep['id']}/events",
                                headers={"Last-Event-ID": events[2].id}))
        assert [e.data for e in tail] == [e.data for e in events[3:]]
        bad = client.get(f"/v1/sweeps/{sweep['id']}/events", headers={"Last-Event-ID": "1.2.3"})
        assert bad.status_code == 422


