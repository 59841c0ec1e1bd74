"""The job page in Chromium against a real `dropnet serve`: live progress and curves from the
event stream, charts that drew exactly the points the API holds, the predict panel."""

from __future__ import annotations

import pytest

from tests.conftest import drop_postgres, fresh_postgres

from .conftest import SERVER_ENV, Tab, digits_job, submit, wait_for_attribute

ITERATIONS = 6000
"""Fewer than the loss chart's point budget: the history it loads is every point."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_env(request: pytest.FixtureRequest):
    """The server's environment on each database: events come from SQLite polling or from
    PostgreSQL LISTEN/NOTIFY."""
    if request.param == "sqlite":
        yield dict(SERVER_ENV)
        return
    url, name = fresh_postgres(request.getfixturevalue("postgres_template"))
    yield {**SERVER_ENV, "DROPNET_DATABASE_URL": url}
    drop_postgres(name)


def drawn(tab: Tab, chart: str, key: str) -> int:
    value = tab.page.get_attribute(f"#{chart}", f"data-points-{key.replace('_', '-')}")
    return int(value or 0)


def history(server, job_id: str, key: str, **params) -> list[dict]:
    response = server.client.get(f"/v1/jobs/{job_id}/metrics/{key}",
                                 params={"limit": 10_000, **params})
    assert response.status_code == 200, response.text
    return response.json()["points"]


def test_job_page_follows_a_running_job_without_reload(serve, server_env, tab: Tab):
    server = serve(env=server_env)
    job = submit(server, digits_job("live digits", ITERATIONS, eval_every=50))
    server.wait_job(job["id"], statuses=("running",), timeout=120)
    page = tab.page
    page.goto(f"{server.url}/jobs/{job['id']}")
    page.wait_for_selector("#page[data-ready=true]")
    page.evaluate("window.__sameDocument = true")
    bar = page.locator("#page .progress[role=progressbar]")
    first_iteration = int(bar.get_attribute("aria-valuenow"))
    first_points = drawn(tab, "loss-chart", "batch_loss")
    assert first_iteration < ITERATIONS, "the job ended before the page could watch it"

    # The progress bar moves and the curves grow while the job trains.
    page.wait_for_function(
        "([before]) => Number(document.querySelector('#page .progress').getAttribute("
        "'aria-valuenow')) > before", arg=[first_iteration])
    page.wait_for_function(
        "([before]) => Number(document.getElementById('loss-chart').getAttribute("
        "'data-points-batch-loss')) > before", arg=[first_points])
    assert int(page.get_attribute("#page", "data-metric-events")) >= 1
    tab.screenshot("job-page-running")

    # The stream's end event: the badge turns without a reload.
    page.wait_for_selector("#status [data-status=succeeded]", timeout=180_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.get_attribute("#live", "data-state") == "ended"
    wait_for_attribute(page, "#page .progress", "aria-valuenow", ITERATIONS)

    # History at open plus live points: every step exactly once, on every series.
    wait_for_attribute(page, "#loss-chart", "data-points-batch-loss", ITERATIONS)
    for chart, key in [("loss-chart", "batch_loss"), ("loss-chart", "train_loss"),
                       ("loss-chart", "test_loss"), ("loss-chart", "learning_rate"),
                       ("accuracy-chart", "train_accuracy"),
                       ("accuracy-chart", "test_accuracy"), ("accuracy-chart", "dropout_rate")]:
        assert drawn(tab, chart, key) == len(history(server, job["id"], key)), key
    final = server.client.get(f"/v1/jobs/{job['id']}").json()
    shown = page.inner_text("#stat-test-accuracy")
    assert shown == f"{100 * final['metrics']['test_accuracy']:.1f}%"
    assert tab.violations() == []
    assert tab.errors == []


def test_charts_draw_the_points_the_history_endpoint_returns(serve, tab: Tab):
    server = serve(env=SERVER_ENV)
    job = submit(server, digits_job("finished digits", 3000, eval_every=100))
    server.wait_job(job["id"], timeout=300)
    page = tab.page
    page.goto(f"{server.url}/jobs/{job['id']}")
    page.wait_for_selector("#page[data-ready=true]")
    budget = int(page.get_attribute("#loss-chart", "data-max-points"))
    assert budget < 3000  # the page asked for a downsampled batch loss
    for chart, key in [("loss-chart", "batch_loss"), ("loss-chart", "learning_rate"),
                       ("accuracy-chart", "dropout_rate"), ("loss-chart", "test_loss"),
                       ("accuracy-chart", "test_accuracy")]:
        answered = history(server, job["id"], key, max_points=budget)
        assert drawn(tab, chart, key) == len(answered) > 0, key
    assert len(history(server, job["id"], "batch_loss", max_points=budget)) <= budget
    # The spec and the attempts are shown.
    assert '"iterations": 3000' in page.inner_text("#spec")
    assert page.locator("#attempts tbody tr").count() == 1
    tab.screenshot("job-page-finished")
    assert tab.violations() == []
    assert tab.errors == []


def test_predict_panel_draws_a_digit_and_answers_with_mc_dropout(serve, tab: Tab):
    server = serve(env=SERVER_ENV)
    job = submit(server, digits_job("digits for predictions", 300))
    server.wait_job(job["id"], timeout=300)
    page = tab.page
    page.goto(f"{server.url}/jobs/{job['id']}")
    page.wait_for_selector("#page[data-ready=true]")
    cells = page.locator("#predict .draw-grid .cell")
    assert cells.count() == 64
    # A vertical stroke down the middle column: a "1".
    page.locator("#predict .draw-grid").scroll_into_view_if_needed()
    top = cells.nth(3).bounding_box()
    bottom = cells.nth(59).bounding_box()
    page.mouse.move(top["x"] + top["width"] / 2, top["y"] + 2)
    page.mouse.down()
    page.mouse.move(bottom["x"] + bottom["width"] / 2, bottom["y"] + bottom["height"] - 2,
                    steps=12)
    with page.expect_request("**/predict") as sent:
        page.mouse.up()  # a finished stroke predicts
    request = sent.value.post_data_json
    assert request["mc_samples"] == 30
    pixels = request["inputs"][0]
    assert len(pixels) == 64 and pixels[3] == 16 and pixels[59] == 16 and pixels[0] == 0
    page.wait_for_selector("#predict .predict-result[data-state=answered]")

    answer = server.client.post(f"/v1/jobs/{job['id']}/predict", json=request).json()
    rows = page.locator("#predict .probabilities li")
    assert rows.count() == 10
    shown = [float(rows.nth(k).get_attribute("data-probability")) for k in range(10)]
    assert shown == pytest.approx(answer["probabilities"][0])
    assert page.inner_text("#predict .predicted-class") == str(answer["predictions"][0])
    # MC dropout: ± std on every class, a band where it is wider than a rounding error.
    assert all("±" in rows.nth(k).inner_text() for k in range(10))
    wide = sum(1 for spread in answer["std"][0] if spread >= 0.0005)
    assert page.locator("#predict .bar-spread").count() == wide >= 1
    tab.screenshot("job-page-predict")
    assert tab.violations() == []
    assert tab.errors == []
