"""The one error shape every 4xx answer has: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from httpx import Response


def assert_error(response: Response) -> dict[str, Any]:
    """The `error` object of a 4xx answer in the project's error shape, each detail naming a
    path, the rule (`type`) and a message; fails on a 5xx, a 2xx or any other shape."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], list), error
    for detail in error["details"]:
        assert {"path", "message", "type"} <= set(detail), detail
        assert detail["path"] and detail["message"] and detail["type"], detail
    return error
