"""The HTTP answer for a request replayed under its Idempotency-Key."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from service.idempotency import StoredResponse


def replayed(stored: StoredResponse) -> JSONResponse:
    """The first response again, marked `Idempotent-Replayed: true`."""
    headers = {"Idempotent-Replayed": "true", **stored.headers}
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)
