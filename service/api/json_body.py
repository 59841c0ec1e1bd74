"""Strict JSON request bodies, checked before any route sees them.

Python's json module (which FastAPI parses bodies with) accepts NaN and Infinity, keeps the
last of duplicate keys, decodes lone UTF-16 surrogates ("\\ud800") that no UTF-8 text can hold,
and gives up on deep nesting with a RecursionError that names no field. This middleware parses
each JSON body strictly first and answers 422 with the JSON path of the first problem:

    {"error": {"code": "invalid_json", "message": "duplicate key 'rate'",
               "details": [{"path": "model.layers[1].rate", ...}]}}

Well-formed bodies reach the route unchanged.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ErrorDetail

from .body_limit import BodyTooLarge, reject_too_large
from .errors import send_error

PARSED_BODY = "dropnet.json"
"""The scope key under which a strictly parsed JSON body is left for inner layers."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _NonFinite:
    """What NaN, Infinity and -Infinity parse to: not a number, so they are found and refused."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


class _StrictDecoding:
    """json.loads hooks that note duplicate keys and non-finite literals as they are parsed."""

    def __init__(self) -> None:
        self.duplicate: tuple[dict[str, Any], str] | None = None
        self.non_finite = False

    def object_pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs) and self.duplicate is None:
            counts = Counter(key for key, _ in pairs)
            self.duplicate = (result, next(key for key, _ in pairs if counts[key] > 1))
        return result

    def constant(self, literal: str) -> _NonFinite:
        self.non_finite = True
        return _NonFinite(literal)


def parse(body: bytes) -> tuple[Any, ErrorDetail | None]:
    """(document, None) for strict UTF-8 JSON (RFC 8259), else (None, the first problem)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, ErrorDetail("body", "the body is not UTF-8 text", "json_invalid",
                                 received=f"byte 0x{body[error.start]:02x} at offset {error.start}")
    decoding = _StrictDecoding()
    try:
        document = json.loads(text, object_pairs_hook=decoding.object_pairs,
                              parse_constant=decoding.constant)
    except RecursionError:
        return None, ErrorDetail("body", "the document is nested too deeply", "json_too_deep")
    except json.JSONDecodeError as error:
        return None, ErrorDetail("body", f"not valid JSON: {error.msg} at line {error.lineno} "
                                 f"column {error.colno}", "json_invalid")
    if decoding.duplicate is not None:
        container, key = decoding.duplicate
        path, _ = _find(document, lambda value: value is container) or ("", None)
        return None, ErrorDetail(_join(path, key), f"duplicate key {key!r}",
                                 "json_duplicate_key")
    if decoding.non_finite:
        path, value = _find(document, lambda value: isinstance(value, _NonFinite)) or ("", None)
        return None, ErrorDetail(path or "body", "NaN and Infinity are not JSON numbers",
                                 "json_invalid", received=getattr(value, "literal", None))
    if _SURROGATE_ESCAPE.search(text):
        found = _find(document, _has_lone_surrogate, keys=True)
        if found is not None:
            return None, ErrorDetail(found[0] or "body", "a \\u escape encodes half of a "
                                     "surrogate pair, which is not a character", "json_invalid")
    return document, None


def _has_lone_surrogate(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _join(path: str | None, key: str) -> str:
    return f"{path}.{key}" if path else key


def _find(document: Any, predicate: Callable[[Any], bool], *,
          keys: bool = False) -> tuple[str, Any] | None:
    """(JSON path, value) of the first value (or, with `keys`, key) matching `predicate`; the
    path "" is the document itself. Iterative, so any depth json.loads accepted is fine."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if predicate(value):
            return path, value
        if isinstance(value, dict):
            for key, item in reversed(value.items()):
                if keys and predicate(key):
                    return _join(path, key), key
                stack.append((_join(path, key), item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item)
                         for index, item in reversed(list(enumerate(value))))
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json" or (
                media_type.startswith(b"application/") and media_type.endswith(b"+json"))
    return False


class StrictJSONBody:
    """422 for JSON bodies that are not strict JSON; everything else passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks = []
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client left: nobody to answer
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except BodyTooLarge as error:
            await reject_too_large(send, error.limit)
            return
        body = b"".join(chunks)
        if body:
            document, problem = parse(body)
            if problem is not None:
                await send_error(send, 422, "invalid_json", problem.message,
                                 [problem.as_dict()])
                return
            scope[PARSED_BODY] = document  # parsed once: FastPredict reads it from here
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
