"""The OpenAPI schema of the /v2 operations: their request body (read by the route itself, so
FastAPI cannot describe it), their keys, and the errors they really answer with, in the
protocol's shape ({"error": "..."}, 400 where the rest of the API says 422)."""

from __future__ import annotations

from typing import Any

from .errors import is_protocol_path
from .schemas import InferenceRequest, ProtocolError

_DESCRIPTIONS = {"400": "an invalid request: the message names the field and the rule",
                 "401": "no valid API key", "404": "no such model (or not the caller's)",
                 "413": "the request body is too large"}


def document_protocol(schema: dict[str, Any], security: list[dict[str, list[str]]]) -> None:
    """Declare, on every /v2 operation of `schema` (in place): `security` on the model routes,
    400 where a client chooses the input, 401, 404 where a name is in the path, 413 where there
    is a body, each error in the ProtocolError shape."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    request_schema = InferenceRequest.model_json_schema(
        ref_template="#/components/schemas/{model}")
    components.update(request_schema.pop("$defs", {}))
    components["InferenceRequest"] = request_schema
    components["ProtocolError"] = ProtocolError.model_json_schema()
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/"
                                                               "ProtocolError"}}}
    for path, item in schema.get("paths", {}).items():
        if not is_protocol_path(path):
            continue
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's; /v2 answers 400
            statuses = set()
            if path.startswith("/v2/models/"):
                statuses |= {"400", "401"}
                operation["security"] = security
            if "{" in path:
                statuses.add("404")
            if "requestBody" in operation:
                statuses |= {"400", "413"}
            for status in statuses:
                responses.setdefault(status, {"description": _DESCRIPTIONS[status]})
            for status, response in responses.items():
                declared = response.get("content", {}).get("application/json", {})
                reference = declared.get("schema", {}).get("$ref", "")
                # A model the route declares for its 4xx stays (the readiness "false").
                if status.startswith("4") and (not reference
                                               or reference.endswith("/HTTPValidationError")):
                    response["content"] = error_content
