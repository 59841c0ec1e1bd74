"""One JSON error shape for every failure: {"error": {"code", "message", "details"}}.

Validation errors name each field by its JSON path, e.g. model.layers[1].rate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from service.errors import InvalidInput, InvalidSpec, ServiceError, json_path, jsonable
from service.store.availability import Unavailable, unavailable

from .v2.errors import is_protocol_path, protocol_error_body, protocol_status

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
"""What a 503 or 507 asks the client to wait: about one database restart."""

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
               413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_input",
               429: "too_many_requests"}


def error_body(code: str, message: str, details: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details)}}


class ErrorJSONResponse(JSONResponse):
    """A JSON error that always renders, whatever the client sent: NaN and infinities become
    strings and everything outside ASCII is escaped (lone surrogates from a JSON escape such
    as "\\ud800" cannot be encoded as UTF-8)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(jsonable(content), ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


def error_response(status: int, code: str, message: str,
                   details: Sequence[dict[str, Any]] = (),
                   headers: Mapping[str, str] | None = None, *,
                   path: str = "") -> ErrorJSONResponse:
    """The error as JSON: in the API's shape, or in the inference protocol's for a /v2 `path`
    (service.api.v2.errors)."""
    if is_protocol_path(path):
        return ErrorJSONResponse(protocol_error_body(message, details),
                                 status_code=protocol_status(status),
                                 headers=dict(headers) if headers else None)
    return ErrorJSONResponse(error_body(code, message, details), status_code=status,
                             headers=dict(headers) if headers else None)


async def send_error(send: Send, status: int, code: str, message: str,
                     details: Sequence[dict[str, Any]] = (), *, close: bool = False,
                     path: str = "") -> None:
    """Answer with an error from ASGI middleware, before the request reached a route.
    `close`: the body was not read, so the connection cannot carry another request.
    `path`: the request's, which decides the error's shape (see error_response)."""
    response = error_response(status, code, message, details, path=path)
    status = response.status_code
    body = response.body
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def validation_details(errors: Sequence[dict[str, Any]], body: Any) -> list[dict[str, Any]]:
    details = []
    for error in errors:
        loc = list(error.get("loc", ()))
        location = loc.pop(0) if loc and loc[0] in ("body", "query", "path", "header") else None
        if error["type"] == "json_invalid":
            loc = []  # the rest is a character offset, not a field
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
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, dict)):
        try:
            long = len(repr(value)) > 200
        except RecursionError:  # nested deeper than repr can go
            long = True
        if long:
            return f"<{type(value).__name__} of {len(value)} items>"
    return value


class InvalidSpecRequest(RequestValidationError):
    """A job spec that failed its JSON schema: answered with InvalidSpec's code."""

    code: ClassVar[str] = InvalidSpec.code


class SpecBodyRoute(APIRoute):
    """For routers whose request bodies are job specs: a request to a route that takes a body
    and fails validation raises InvalidSpecRequest, so that it carries the code invalid_spec.
    Routes without a body answer invalid_input as everywhere else."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def handle_spec(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as error:
                raise InvalidSpecRequest(error.errors(), body=error.body) from None

        return handle_spec


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message,
                              [d.as_dict() for d in exc.details], exc.headers,
                              path=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if isinstance(getattr(exc, "body", None), bytes):
            # FastAPI hands the raw bytes over when the Content-Type is not JSON.
            content_type = request.headers.get("content-type", "none")
            return error_response(415, "unsupported_media_type", "expected a JSON body", [{
                "path": "body", "message": "the body must be sent as JSON",
                "type": "content_type", "expected": "Content-Type: application/json",
                "received": content_type[:100]}], path=request.url.path)
        details = validation_details(exc.errors(), getattr(exc, "body", None))
        paths = ", ".join(d["path"] for d in details[:5])
        code = getattr(exc, "code", InvalidInput.code)
        return error_response(422, code, f"invalid request: {paths}", details,
                              path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        details = []
        if exc.status_code == 400:  # FastAPI could not parse the body (malformed multipart)
            details.append({"path": "body", "message": str(exc.detail), "type": "malformed"})
        elif exc.status_code == 413:
            details.append({"path": "body", "message": str(exc.detail), "type": "limit"})
        return error_response(exc.status_code, code, str(exc.detail), details,
                              getattr(exc, "headers", None), path=request.url.path)

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Handled here, inside the exception middleware: the connection stays usable.
        outage = database_outage_response(exc, request.url.path)
        if outage is not None:
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                        exc)
            return outage
        return _internal_error(request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request)


def _internal_error(request: Request) -> ErrorJSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error",
                          path=request.url.path)


def database_outage_response(error: BaseException, path: str = "") -> ErrorJSONResponse | None:
    """503 + Retry-After while the database is unreachable, 507 while its disk is full; None
    for any other error. `path`: the request's (see error_response)."""
    reason = unavailable(error)
    if reason is Unavailable.FULL:
        return error_response(507, "storage_full",
                              "the database's disk is full: nothing was written; reads still "
                              "work", headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                              path=path)
    if reason is Unavailable.UNREACHABLE:
        return error_response(503, "database_unavailable",
                              "the database is unavailable; retry shortly",
                              headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, path=path)
    return None


_DESCRIPTIONS = {"400": "the body could not be parsed", "401": "no valid API key",
                 "404": "no such resource (or not the caller's)",
                 "413": "the request body is too large",
                 "415": "the body is not JSON (Content-Type: application/json)",
                 "422": "invalid input: each detail names a field and the rule it breaks"}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI schema declare the errors the API really answers with, in its one
    error shape: 401 on /v1, 404 where an id is in the path, 413 where there is a body, 415
    where it must be JSON, 400 where a multipart body may not parse, and 422 everywhere a
    client chooses the input
    (FastAPI's own 422 model, HTTPValidationError, describes a shape we never send).
    /v2 in the protocol's shape: service.api.v2.openapi."""
    from .deps import BEARER_SCHEME
    from .schemas.errors import ErrorResponse
    from .v2.openapi import document_protocol

    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(BEARER_SCHEME)
    components = schema["components"].setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorResponse"] = error_schema
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/"
                                                               "ErrorResponse"}}}
    for path, item in schema.get("paths", {}).items():
        if is_protocol_path(path):
            continue  # documented by service.api.v2.openapi, in the protocol's shape
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            statuses = set()
            body = operation.get("requestBody", {}).get("content", {})
            if path.startswith("/v1/"):
                statuses |= {"401", "422"}
                operation["security"] = [{name: []} for name in BEARER_SCHEME]
            if "{" in path:
                statuses.add("404")
            if body:
                statuses |= {"413", "422"}
            if "application/json" in body:
                statuses.add("415")
            if "multipart/form-data" in body:
                statuses.add("400")
            for status in statuses:
                responses.setdefault(status, {"description": _DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status.startswith(("4", "5")) and status != "503":
                    response["content"] = error_content
    document_protocol(schema, [{name: []} for name in BEARER_SCHEME])
    return schema
