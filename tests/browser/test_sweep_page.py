"""The sweep page: one point per swept value (mean ± std from the API's summary), every
run's test-accuracy curve, live until the sweep ends."""

from __future__ import annotations

from .conftest import SERVER_ENV, Tab, digits_job, wait_for_attribute

RATES = [0.0, 0.3, 0.6]
SEEDS = [1, 2]


def test_sweep_page_shows_one_point_per_swept_value(serve, tab: Tab):
    server = serve(env=SERVER_ENV)
    base = digits_job("sweep run", 150, eval_every=10)
    response = server.client.post("/v1/sweeps", json={
        "name": "dropout against the gap", "base": base,
        "parameters": {"dropout.rate": RATES, "training.seed": SEEDS}})
    assert response.status_code == 201, response.text
    sweep = response.json()
    page = tab.page
    page.goto(f"{server.url}/sweeps/{sweep['id']}")
    page.wait_for_selector("#page[data-ready=true]")
    page.evaluate("window.__sameDocument = true")

    # Live: the page follows the sweep's events until every run has ended.
    page.wait_for_selector("#status [data-status=succeeded]", timeout=300_000)
    rate_chart = ".chart[data-parameter='dropout.rate']"
    wait_for_attribute(page, rate_chart, "data-points-test-accuracy", len(RATES))
    assert page.evaluate("window.__sameDocument") is True
    assert page.get_attribute(rate_chart, "data-points-accuracy-gap") == str(len(RATES))
    seed_chart = ".chart[data-parameter='training.seed']"
    assert page.get_attribute(seed_chart, "data-points-test-accuracy") == str(len(SEEDS))

    # Every run's curve, each with the points its history holds.
    detail = server.client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert len(detail["runs"]) == len(RATES) * len(SEEDS)
    for run in detail["runs"]:
        points = server.client.get(f"/v1/jobs/{run['job_id']}/metrics/test_accuracy").json()
        assert len(points["points"]) > 0
        wait_for_attribute(page, "#curves-chart", f"data-points-{run['job_id']}",
                           len(points["points"]))
    assert page.locator("#runs tbody tr").count() == len(RATES) * len(SEEDS)
    tab.screenshot("sweep-page")
    assert tab.violations() == []
    assert tab.errors == []
