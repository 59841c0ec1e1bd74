"""With API keys configured the dashboard asks for a key once and keeps it for the tab."""

from __future__ import annotations

from .conftest import Tab, digits_job, submit

KEY = "dashboard-test-key-0123456789"


def test_the_key_is_asked_once_and_kept_for_the_tab(serve, tab: Tab):
    server = serve(env={"DROPNET_WORKERS": "0", "DROPNET_API_KEYS": f"alice:{KEY}"})
    job = submit(server, digits_job("alice's job", 100), Authorization=f"Bearer {KEY}")
    page = tab.page
    page.goto(server.url + "/")
    dialog = page.locator("dialog.key-dialog")
    dialog.wait_for()
    dialog.locator("input").fill("wrong-key")
    dialog.locator("button[type=submit]").click()
    # Refused: asked again, with the server's reason.
    page.wait_for_selector("dialog.key-dialog >> text=That key was refused")
    page.locator("dialog.key-dialog input").fill(KEY)
    page.locator("dialog.key-dialog button[type=submit]").click()
    page.locator(f"#jobs tr[data-job-id='{job['id']}']").wait_for()
    assert page.evaluate("sessionStorage.getItem('dropnet.apiKey')") == KEY

    # Another page of the same tab: no second question.
    page.click(f"#jobs tr[data-job-id='{job['id']}'] a")
    page.wait_for_selector("#page[data-ready=true]")
    assert page.inner_text("#job-name") == "alice's job"
    assert page.locator("dialog.key-dialog").count() == 0
    assert tab.violations() == []
