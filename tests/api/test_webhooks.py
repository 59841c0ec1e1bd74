"""`notify` in a job spec: refused URLs are 422s naming notify.url and the rule; the
deliveries route shows what the app's own background sender did, to its owner only."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from service.store import deliveries as delivery_rows
from service.store.session import Database
from tests.factories import DIGITS_SPEC
from tests.webhooks.receiver import Receiver

ALICE, BOB = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}


def with_notify(url: str, **notify: object) -> dict:
    return {**DIGITS_SPEC, "notify": {"url": url, **notify}}


def refusal(response) -> dict:
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "invalid_spec", body
    [detail] = body["details"]
    return detail


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:8000/hooks", "127.0.0.1, a loopback address"),
    ("http://10.1.2.3/hooks", "10.1.2.3, a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a cloud metadata address"),
    ("http://[::1]:9000/", "::1, a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1, a loopback address"),
    ("http://0.0.0.0/", "0.0.0.0, an unspecified address"),
    ("http://224.0.0.1/", "224.0.0.1, a multicast address"),
    ("https://192.168.1.20/", "192.168.1.20, a private address"),
    ("http://100.64.0.7/", "100.64.0.7, a non-public address"),
])
def test_non_public_addresses_are_refused_at_submission(client: TestClient, url: str,
                                                        reason: str) -> None:
    detail = refusal(client.post("/v1/jobs", json=with_notify(url)))
    assert detail["path"] == "notify.url" and detail["type"] == "unsafe_url"
    assert detail["message"] == reason and detail["received"] == url
    assert "DROPNET_WEBHOOK_ALLOWED_HOSTS" in detail["expected"]


def test_a_host_name_resolving_to_loopback_is_refused_at_submission(client: TestClient) -> None:
    detail = refusal(client.post("/v1/jobs", json=with_notify("http://localhost:8080/x")))
    assert detail["path"] == "notify.url"
    assert detail["message"].startswith("'localhost' resolves to ")
    assert detail["message"].endswith("a loopback address")


@pytest.mark.parametrize(("url", "message"), [
    ("file:///etc/passwd", "scheme 'file' is not allowed: expected an http:// or https:// URL"),
    ("gopher://example.com/", "scheme 'gopher' is not allowed"),
    ("http:///path-only", "the URL has no host"),
    ("http://user:pw@example.com/", "the URL holds credentials"),
    ("http://example.com:99999/", "the URL's port is not a number in 1..65535"),
])
def test_malformed_urls_are_refused_by_the_spec(client: TestClient, url: str,
                                                message: str) -> None:
    detail = refusal(client.post("/v1/jobs", json=with_notify(url)))
    assert detail["path"] == "notify.url" and detail["message"].startswith(message)


def test_events_are_checked(client: TestClient) -> None:
    url = "https://hooks.example.com/dropnet"
    detail = refusal(client.post("/v1/jobs", json=with_notify(url, events=["finished"])))
    assert detail["path"] == "notify.events[0]"
    detail = refusal(client.post("/v1/jobs", json=with_notify(url, events=["failed", "failed"])))
    assert detail["path"] == "notify" and "each event at most once" in detail["message"]
    detail = refusal(client.post("/v1/jobs", json=with_notify(url, events=[])))
    assert detail["path"] == "notify.events"


def test_the_deliveries_route_shows_the_apps_sender_at_work(keyed: TestClient,
                                                            db: Database) -> None:
    with Receiver([502, 200]) as receiver:
        submitted = keyed.post("/v1/jobs", headers=ALICE, json=with_notify(receiver.url))
        assert submitted.status_code == 201, submitted.text
        assert submitted.json()["spec"]["notify"] == {
            "url": receiver.url, "events": ["succeeded", "failed", "cancelled"]}
        job_id = submitted.json()["id"]
        assert keyed.post(f"/v1/jobs/{job_id}/cancel", headers=ALICE).status_code == 202
        first = keyed.get(f"/v1/jobs/{job_id}/deliveries", headers=ALICE).json()["data"]
        assert [d["event_type"] for d in first] == ["job.cancelled"]
        requests = receiver.wait_for(2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [delivery] = keyed.get(f"/v1/jobs/{job_id}/deliveries", headers=ALICE).json()["data"]
            if delivery["status"] == "succeeded":
                break
            time.sleep(0.05)
    assert delivery["webhook_id"] == f"msg_{delivery['id']}" == requests[0].headers["webhook-id"]
    assert delivery["url"] == receiver.url and delivery["next_attempt_at"] is None
    assert [(a["number"], a["status_code"], a["error"]) for a in delivery["attempts"]] == [
        (1, 502, "HTTP 502"), (2, 200, None)]
    assert delivery["delivered_at"] is not None
    with db.read() as session:
        secret = delivery_rows.secret_of(session, "alice")
    assert secret is not None
    payload = Webhook(secret).verify(requests[1].body, requests[1].headers)
    assert payload["data"]["job_id"] == job_id and payload["data"]["status"] == "cancelled"
    # Another owner cannot tell the job's deliveries from a job that does not exist.
    for path in (f"/v1/jobs/{job_id}/deliveries", f"/v1/jobs/{'f' * 32}/deliveries"):
        response = keyed.get(path, headers=BOB)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_sweeps_runs_notify_as_its_base_asks(keyed: TestClient) -> None:
    with Receiver([200]) as receiver:
        sweep = keyed.post("/v1/sweeps", headers=ALICE, json={
            "name": "notified", "base": with_notify(receiver.url, events=["cancelled"]),
            "parameters": {"training.seed": [1, 2]}})
        assert sweep.status_code == 201, sweep.text
        assert keyed.post(f"/v1/sweeps/{sweep.json()['id']}/cancel",
                          headers=ALICE).status_code == 202
        requests = receiver.wait_for(2)
    runs = keyed.get("/v1/jobs", params={"sweep_id": sweep.json()["id"]},
                     headers=ALICE).json()["data"]
    assert len(runs) == 2
    webhook_ids = set()
    for run in runs:
        [delivery] = keyed.get(f"/v1/jobs/{run['id']}/deliveries", headers=ALICE).json()["data"]
        assert delivery["event_type"] == "job.cancelled"
        webhook_ids.add(delivery["webhook_id"])
    assert {r.headers["webhook-id"] for r in requests} == webhook_ids
