"""Request body size limits, enforced while the body is read (chunked bodies included)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_error


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


class BodySizeLimit:
    """413 for bodies over `default_limit` bytes, or `upload_limit` on upload paths."""

    def __init__(self, app: ASGIApp, *, default_limit: int, upload_limit: int,
                 upload_paths: tuple[str, ...] = ("/v1/datasets",)) -> None:
        self.app = app
        self.default_limit = default_limit
        self.upload_limit = upload_limit
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (self.upload_limit if scope["path"].rstrip("/") in self.upload_paths
                 else self.default_limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await reject_too_large(send, limit, scope["path"])
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            # Routes turn it into a 413 themselves; this catches readers outside a route.
            if started:
                raise
            await reject_too_large(send, limit, scope["path"])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def reject_too_large(send: Send, limit: int, path: str) -> None:
    """413 without reading (the rest of) the body, so the connection is closed. `path`: the
    request's, which decides the error's shape."""
    await send_error(send, 413, "payload_too_large", f"request body larger than {limit} bytes",
                     [{"path": "body", "message": "the request body is too large",
                       "type": "limit", "expected": f"at most {limit} bytes"}], close=True,
                     path=path)
