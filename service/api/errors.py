"""One JSON error shape for every failure: {"error": {"code", "message", "details"}}.

Validation errors name each field by its JSON path, e.g. model.layers[1].rate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import ServiceError, jsonable

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
               413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_input",
               429: "too_many_requests"}


def error_body(code: str, message: str, details: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details)}}


def json_path(loc: Sequence[Any], document: Any) -> str:
    """A pydantic error location as a JSON path, walking the input to drop union tags.

    ('model', 'layers', 1, 'dropout', 'rate') -> 'model.layers[1].rate'
    """
    path = ""
    current = document
    for index, element in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, dict):
            if element in current:
                current = current[element]
            elif not last:
                continue  # a union member's tag, not a key of the input
            path += f".{element}" if path else str(element)
        elif isinstance(current, list) and isinstance(element, int):
            current = current[element] if 0 <= element < len(current) else None
            path += f"[{element}]"
        elif current is None and not path:
            path = str(element)
        else:
            break  # inside a scalar: the rest are type labels of a union
    return path


def validation_details(errors: Sequence[dict[str, Any]], body: Any) -> list[dict[str, Any]]:
    details = []
    for error in errors:
        loc = list(error.get("loc", ()))
        location = loc.pop(0) if loc and loc[0] in ("body", "query", "path", "header") else None
        document = body if location == "body" and isinstance(body, (dict, list)) else None
        path = json_path(loc, document) if document is not None else ".".join(map(str, loc))
        detail: dict[str, Any] = {"path": path or (location or ""), "message": error["msg"],
                                  "type": error["type"]}
        if location and location != "body":
            detail["location"] = location
        if error["type"] != "missing" and "input" in error:
            detail["received"] = jsonable(_shorten(error["input"]))
        details.append(detail)
    return details


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "..."
    if isinstance(value, (list, dict)) and len(repr(value)) > 200:
        return f"<{type(value).__name__} of {len(value)} items>"
    return value


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, [d.as_dict() for d in exc.details]),
            status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors(), getattr(exc, "body", None))
        paths = ", ".join(d["path"] for d in details[:5])
        code = "invalid_spec" if request.url.path.rstrip("/") == "/v1/jobs" else "invalid_input"
        return JSONResponse(error_body(code, f"invalid request: {paths}", details),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"),
                            status_code=500)
