"""The pages' Content-Security-Policy and escaping: a job named with markup runs nothing and
shows literally; the pages need nothing the policy forbids."""

from __future__ import annotations

from service.dashboard.pages import CONTENT_SECURITY_POLICY

from .conftest import Tab, digits_job, submit

HOSTILE_NAME = ('<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
                '<svg onload="window.__pwned = 3">')


def test_every_page_and_file_carries_the_policy(serve):
    server = serve(env={"DROPNET_WORKERS": "0"})
    for path in ["/", "/jobs/any", "/sweeps/any", "/dashboard/static/js/job-page.js",
                 "/dashboard/static/vendor/uPlot.iife.min.js"]:
        response = server.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


def test_a_job_named_with_markup_runs_nothing_and_shows_literally(serve, tab: Tab):
    server = serve(env={"DROPNET_WORKERS": "0"})  # it stays queued: only its name matters
    job = submit(server, digits_job(HOSTILE_NAME, 100))
    page = tab.page

    page.goto(server.url + "/")
    link = page.locator(f"#jobs tr[data-job-id='{job['id']}'] a.job-name")
    link.wait_for()
    assert link.inner_text() == HOSTILE_NAME
    link.click()
    page.wait_for_selector("#page[data-ready=true]")
    assert page.inner_text("#job-name") == HOSTILE_NAME
    assert HOSTILE_NAME.replace('"', '\\"') in page.inner_text("#spec")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main svg[onload], main script").count() == 0
    assert page.title() == f"{HOSTILE_NAME} · dropnet"
    tab.screenshot("hostile-name")
    assert tab.violations() == []
    assert tab.errors == []


def test_a_missing_job_is_an_error_state_not_a_blank_page(serve, tab: Tab):
    server = serve(env={"DROPNET_WORKERS": "0"})
    tab.page.goto(f"{server.url}/jobs/no-such-job")
    alert = tab.page.locator("main .notice-error")
    alert.wait_for()
    assert "No job no-such-job" in alert.inner_text()
    assert tab.violations() == []
