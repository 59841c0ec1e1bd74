"""Event streams across a worker crash, under a real `dropnet serve` (SQLite and PostgreSQL):
a worker killed mid-job, its attempt resumed from the checkpoint, a client that disconnects
and resumes with Last-Event-ID: every step arrives exactly once, with the stored value."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_crashes import FAST_RECOVERY, histories, long_job
from tests.events.sse import Event, parse, steps_seen


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    from tests.conftest import drop_postgres, fresh_postgres

    url, name = fresh_postgres(request.getfixturevalue("postgres_template"))
    yield {"DROPNET_DATABASE_URL": url}
    drop_postgres(name)


def events(server: Server, job_id: str, last_event_id: str | None = None) -> Iterator[Event]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with httpx.Client(base_url=server.url, timeout=60) as client, client.stream(
            "GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200
        for item in parse(response.iter_lines()):
            if isinstance(item, Event):
                yield item


def test_a_killed_worker_and_a_reconnect_deliver_every_step_exactly_once(serve, backend_env):
    server = serve(env={**FAST_RECOVERY, "DROPNET_WORKERS": "1", **backend_env})
    job_id = server.client.post("/v1/jobs", json=long_job(4000)).json()["id"]
    received: list[Event] = []
    killed = None
    for event in events(server, job_id):
        received.append(event)
        last_step = event.data["points"][-1]["step"] if event.type == "metrics" else 0
        if killed is None and last_step >= 800:  # past the checkpoint at 500
            killed = server.client.get(f"/v1/jobs/{job_id}").json()["worker"]["pid"]
            os.kill(killed, signal.SIGKILL)
        if event.type == "status" and (event.data["status"], event.data["attempts"]) == (
                "running", 2):
            break  # disconnect once the resumed attempt runs
    assert killed is not None
    assert server.client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    rest = list(events(server, job_id, received[-1].id))
    assert rest[-1].type == "end" and rest[-1].data["status"] == "succeeded"
    assert rest[-1].data["attempts"] == 2

    everything = received + rest
    seen = steps_seen(everything)
    assert len(seen) == len(set(seen)), "a step arrived twice"
    stored = {(key, step): value for key, points in histories(server, job_id).items()
              for step, value in points}
    assert set(seen) == set(stored), "a step is missing"
    # Steps 501.. that the first attempt wrote were sent before the crash and rewritten
    # after it, bit for bit: what the stream delivered is what is stored now.
    delivered = {(p["key"], p["step"]): p["value"] for e in everything if e.type == "metrics"
                 for p in e.data["points"]}
    assert delivered == stored
    statuses = [(e.data["status"], e.data["attempts"]) for e in everything if e.type == "status"]
    assert statuses == [("queued", 0), ("running", 1), ("queued", 1), ("running", 2),
                        ("succeeded", 2)]
    # A client arriving now replays the same history from the first event.
    replay = list(events(server, job_id))
    assert sorted(steps_seen(replay)) == sorted(seen)
