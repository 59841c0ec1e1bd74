"""DropnetError: the one exception the client raises, carrying the API's error."""

from __future__ import annotations

from typing import Any

import httpx


class DropnetError(Exception):
    """A request the API refused, or one that never got an answer.

    `status` is the HTTP status (None when the server could not be reached); `code`,
    `message` and `details` are the API's `{"error": {"code", "message", "details"}}`
    (details: `[{"path", "message", "type", "expected", "received", ...}]`).
    """

    def __init__(self, status: int | None, code: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no answer"
        lines = [f"{self.code}: {self.message} ({where})"]
        for detail in self.details:
            received = (f" (received {detail['received']!r})"
                        if detail.get("received") is not None else "")
            lines.append(f"  {detail.get('path', '')}: {detail.get('message', '')}{received}")
        return "\n".join(lines)

    @classmethod
    def from_response(cls, response: httpx.Response) -> DropnetError:
        """The error a non-2xx response carries; a body not in the API's shape (a proxy's
        page, say) becomes code `http_<status>` with the start of the body as message."""
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error["code"]), str(error["message"]),
                       list(error.get("details") or []))
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, f"http_{response.status_code}",
                       response.text[:500] or response.reason_phrase)

    @classmethod
    def unreachable(cls, url: str, error: httpx.TransportError) -> DropnetError:
        return cls(None, "unreachable", f"{url}: {type(error).__name__}: {error}")
