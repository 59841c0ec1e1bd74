"""Request latency per route template, for /metrics."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.telemetry import REQUEST_SECONDS

ROUTE_TEMPLATE = "dropnet.route"
"""Scope key for the route template of a request answered below the router (FastPredict)."""


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            template = scope.get(ROUTE_TEMPLATE) or getattr(scope.get("route"), "path",
                                                            "unmatched")
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start)
