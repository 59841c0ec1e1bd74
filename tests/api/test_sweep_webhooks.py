"""`notify` on a sweep: one signed delivery when the sweep ends (its last run does), with the
sweep's status as the event; refused URLs are 422s naming notify.url; the sweep's deliveries
route shows it, to its owner only. The app's own sender posts to a real loopback receiver."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from service.store import deliveries as delivery_rows
from service.store.session import Database
from tests.api.test_webhooks import ALICE, BOB, refusal
from tests.factories import DIGITS_SPEC
from tests.webhooks.receiver import Receiver


def notified_sweep(client: TestClient, url: str, **notify: object) -> dict[str, Any]:
    """A 2-run sweep (seeds 1 and 2) of alice's with `notify` on the sweep, not on its base."""
    created = client.post("/v1/sweeps", headers=ALICE, json={
        "name": "notified", "base": DIGITS_SPEC, "parameters": {"training.seed": [1, 2]},
        "notify": {"url": url, **notify}})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def delivered(client: TestClient, sweep_id: str) -> dict[str, Any]:
    """The sweep's one delivery, once the app's sender has recorded its success."""
    deadline = time.monotonic() + 10
    while True:
        response = client.get(f"/v1/sweeps/{sweep_id}/deliveries", headers=ALICE)
        assert response.status_code == 200, response.text
        [delivery] = response.json()["data"]
        if delivery["status"] == "succeeded" or time.monotonic() > deadline:
            return dict(delivery)
        time.sleep(0.05)


def verified(db: Database, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    with db.read() as session:
        secret = delivery_rows.secret_of(session, "alice")
    assert secret is not None
    payload: dict[str, Any] = Webhook(secret).verify(body, headers)
    return payload


def test_a_two_run_sweep_sends_one_delivery_when_both_runs_end(
        keyed: TestClient, db: Database, run_jobs: Callable[[], list[str]]) -> None:
    with Receiver([200]) as receiver:
        sweep = notified_sweep(keyed, receiver.url)
        assert sweep["spec"]["notify"] == {
            "url": receiver.url, "events": ["succeeded", "failed", "cancelled"]}
        assert keyed.get(f"/v1/sweeps/{sweep['id']}/deliveries",
                         headers=ALICE).json() == {"data": []}
        ran = run_jobs()
        assert len(ran) == 2
        [request] = receiver.wait_for(1)
        delivery = delivered(keyed, sweep["id"])
        time.sleep(0.5)  # several sender polls: nothing more is sent
        assert len(receiver.received) == 1
    assert delivery["event_type"] == "sweep.succeeded" and delivery["status"] == "succeeded"
    assert delivery["webhook_id"] == request.headers["webhook-id"]
    assert [(a["number"], a["status_code"]) for a in delivery["attempts"]] == [(1, 200)]
    payload = verified(db, request.body, request.headers)
    data = payload["data"]
    assert payload["type"] == "sweep.succeeded"
    assert (data["sweep_id"], data["status"], data["counts"], data["runs"]) == (
        sweep["id"], "succeeded", {"succeeded": 2}, 2)
    shown = keyed.get(f"/v1/sweeps/{sweep['id']}", headers=ALICE).json()
    assert data["best_run"]["job_id"] == shown["best_run"]["job_id"]
    assert data["best_run"]["final"]["test_accuracy"] == shown["best_run"]["test_accuracy"]
    assert data["best_run"]["parameters"] in ({"training.seed": 1}, {"training.seed": 2})
    # The runs' own deliveries are not the sweep's: the base asked for none.
    for job_id in ran:
        assert keyed.get(f"/v1/jobs/{job_id}/deliveries", headers=ALICE).json() == {"data": []}


def test_a_cancelled_sweep_sends_cancelled(keyed: TestClient, db: Database) -> None:
    with Receiver([200]) as receiver:
        sweep = notified_sweep(keyed, receiver.url, events=["cancelled"])
        assert keyed.post(f"/v1/sweeps/{sweep['id']}/cancel", headers=ALICE).status_code == 202
        [request] = receiver.wait_for(1)
        delivery = delivered(keyed, sweep["id"])
    assert delivery["event_type"] == "sweep.cancelled"
    payload = verified(db, request.body, request.headers)
    assert payload["type"] == "sweep.cancelled"
    assert payload["data"]["counts"] == {"cancelled": 2} and payload["data"]["best_run"] is None
    # Another owner cannot tell the sweep's deliveries from a sweep that does not exist.
    for path in (f"/v1/sweeps/{sweep['id']}/deliveries", f"/v1/sweeps/{'f' * 32}/deliveries"):
        response = keyed.get(path, headers=BOB)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_an_event_the_sweep_did_not_ask_for_sends_nothing(
        keyed: TestClient, run_jobs: Callable[[], list[str]]) -> None:
    with Receiver([200]) as receiver:
        sweep = notified_sweep(keyed, receiver.url, events=["failed", "cancelled"])
        assert len(run_jobs()) == 2
        assert keyed.get(f"/v1/sweeps/{sweep['id']}", headers=ALICE).json()["status"] == \
            "succeeded"
        assert keyed.get(f"/v1/sweeps/{sweep['id']}/deliveries",
                         headers=ALICE).json() == {"data": []}
        assert receiver.received == []


def test_a_sweep_notify_to_a_private_address_is_refused(keyed: TestClient) -> None:
    detail = refusal(keyed.post("/v1/sweeps", headers=ALICE, json={
        "name": "private", "base": DIGITS_SPEC, "parameters": {"training.seed": [1, 2]},
        "notify": {"url": "http://10.1.2.3/hooks"}}))
    assert (detail["path"], detail["type"], detail["message"]) == (
        "notify.url", "unsafe_url", "10.1.2.3, a private address")
    assert detail["received"] == "http://10.1.2.3/hooks"


def test_a_sweep_notify_is_checked_by_the_jobs_notify_rules(keyed: TestClient) -> None:
    response = keyed.post("/v1/sweeps", headers=ALICE, json={
        "name": "bad", "base": DIGITS_SPEC, "parameters": {"training.seed": [1]},
        "notify": {"url": "file:///etc/passwd", "events": ["succeeded", "succeeded"]}})
    assert response.status_code == 422, response.text
    details = {d["path"]: d["message"] for d in response.json()["error"]["details"]}
    assert details["notify.url"].startswith("scheme 'file' is not allowed")
