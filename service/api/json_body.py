"""Strict JSON request bodies, checked before any route sees them.

Python's json module (which FastAPI parses bodies with) accepts NaN and Infinity, reads 1e400
as infinity, raises a bare ValueError for integers of more than 4300 digits, keeps the last of
duplicate keys, decodes lone UTF-16 surrogates ("\\ud800") that no UTF-8 text can hold, and
gives up on deep nesting with a RecursionError that names no field (or, a little less deep, only
when FastAPI parses the body a second time, further down the stack). This middleware parses
each JSON body strictly first and answers 422 with the JSON path of the first problem:

    {"error": {"code": "invalid_json", "message": "duplicate key 'rate'",
               "details": [{"path": "model.layers[1].rate", ...}]}}

Well-formed bodies reach the route unchanged.
"""

from __future__ import annotations

import email.message
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ErrorDetail

from .body_limit import BodyTooLarge, reject_too_large
from .errors import send_error
from .v2.errors import is_protocol_path

PARSED_BODY = "dropnet.json"
"""The scope key under which a strictly parsed JSON body is left for inner layers."""

MAX_DEPTH = 128
"""Arrays and objects nest at most this deep (a job spec needs 5): well within the stack that
both json.loads calls of a request have left."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b'[]{}"')))


class _Unreadable:
    """What a number literal the service will not read parses to (NaN, Infinity, a float
    beyond the float64 range, an integer of too many digits): found by its path and refused."""

    def __init__(self, message: str, kind: str, received: str,
                 expected: str | None = None) -> None:
        self.message = message
        self.kind = kind
        self.received = received
        self.expected = expected


class _StrictDecoding:
    """json.loads hooks that note duplicate keys and unreadable numbers as they are parsed."""

    def __init__(self) -> None:
        self.duplicate: tuple[dict[str, Any], str] | None = None
        self.unreadable = False

    def load(self, text: str, *, numbers: bool) -> Any:
        """json.loads with these hooks. `numbers`: read each number through `real` and
        `integer`, a Python call per number that would double the parse of a prediction,
        so only when the text has an exponent (the body of a job spec always has: "name").
        Without one a float overflows only with 309 digits before its point; such a number
        reaches the routes as infinity, which they refuse as not finite."""
        # None is json.loads' default: the C parser's own number reading.
        return json.loads(text, object_pairs_hook=self.object_pairs,
                          parse_constant=self.constant,
                          parse_float=self.real if numbers else None,
                          parse_int=self.integer if numbers else None)

    def object_pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs) and self.duplicate is None:
            counts = Counter(key for key, _ in pairs)
            self.duplicate = (result, next(key for key, _ in pairs if counts[key] > 1))
        return result

    def constant(self, literal: str) -> _Unreadable:
        self.unreadable = True
        return _Unreadable("NaN and Infinity are not JSON numbers", "json_invalid", literal)

    def real(self, literal: str) -> float | _Unreadable:
        value = float(literal)
        if math.isfinite(value):
            return value
        self.unreadable = True
        return _Unreadable("the number is beyond the range of a 64-bit float",
                           "json_number_out_of_range", _shorten(literal),
                           f"a magnitude of at most {sys.float_info.max:.6g}")

    def integer(self, literal: str) -> int | _Unreadable:
        try:
            return int(literal)
        except ValueError:  # beyond sys.get_int_max_str_digits(), checked before converting
            digits = len(literal.lstrip("-"))
            self.unreadable = True
            return _Unreadable(f"the integer has {digits} digits, too many to read",
                               "json_number_out_of_range", _shorten(literal),
                               f"at most {sys.get_int_max_str_digits()} digits")


def parse(body: bytes) -> tuple[Any, ErrorDetail | None]:
    """(document, None) for strict UTF-8 JSON (RFC 8259), else (None, the first problem)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, ErrorDetail("body", "the body is not UTF-8 text", "json_invalid",
                                 received=f"byte 0x{body[error.start]:02x} at offset {error.start}")
    decoding = _StrictDecoding()
    try:
        try:
            document = decoding.load(text, numbers="e" in text or "E" in text)
        except json.JSONDecodeError:
            raise
        except ValueError:  # int() refused a literal's length: read numbers one by one
            decoding = _StrictDecoding()
            document = decoding.load(text, numbers=True)
    except RecursionError:
        return None, _too_deep("body")
    except json.JSONDecodeError as error:
        return None, ErrorDetail("body", f"not valid JSON: {error.msg} at line {error.lineno} "
                                 f"column {error.colno}", "json_invalid")
    if decoding.duplicate is not None:
        container, key = decoding.duplicate
        path, _ = _find(document, lambda value: value is container) or ("", None)
        return None, ErrorDetail(_join(path, key), f"duplicate key {key!r}",
                                 "json_duplicate_key")
    # Only a duplicate key (refused above) can drop a parsed value from the document.
    found = (_find(document, lambda value: isinstance(value, _Unreadable))
             if decoding.unreadable else None)
    if found is not None:
        path, number = found
        return None, ErrorDetail(path or "body", number.message, number.kind,
                                 expected=number.expected, received=number.received)
    if _nests_deeper_than(body, MAX_DEPTH):
        return None, _too_deep(_too_deep_at(document))
    if _SURROGATE_ESCAPE.search(text):
        found = _find(document, _has_lone_surrogate, keys=True)
        if found is not None:
            return None, ErrorDetail(found[0] or "body", "a \\u escape encodes half of a "
                                     "surrogate pair, which is not a character", "json_invalid")
    return document, None


def _too_deep(path: str) -> ErrorDetail:
    return ErrorDetail(path or "body", "the document is nested too deeply", "json_too_deep",
                       expected=f"arrays and objects nested at most {MAX_DEPTH} deep")


def _nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether arrays and objects in a well-formed JSON document nest more than `limit` deep,
    from its text alone, at C speed (walking a parsed 200-row batch takes longer than
    parsing it): drop escapes, keep only brackets and quotes, drop strings, then peel off
    the innermost level of brackets once per allowed level."""
    if b"\\" in body:
        body = _ESCAPE.sub(b"", body)
    brackets = body.translate(_BRACKETS, _NOT_BRACKETS)
    if len(brackets) <= limit:  # too few brackets (and quotes) to nest that deep
        return False
    brackets = _STRING.sub(b"", brackets)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _too_deep_at(document: Any) -> str:
    """The JSON path of the first array or object nested deeper than MAX_DEPTH."""
    stack: list[tuple[str, Any, int]] = [("", document, 1)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path
        items = (((_join(path, key), item) for key, item in value.items())
                 if isinstance(value, dict) else
                 ((f"{path}[{index}]", item) for index, item in enumerate(value)))
        stack.extend(reversed([(item_path, item, depth + 1) for item_path, item in items
                               if isinstance(item, (dict, list))]))
    return ""


def _shorten(literal: str) -> str:
    return literal if len(literal) <= 40 else f"{literal[:20]}...({len(literal)} characters)"


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
    """Whether FastAPI will parse the body as JSON, by FastAPI's own rule (email.message's
    reading of the first Content-Type), so no body reaches its lenient parser unchecked: a
    rule of our own let "application/json\\x1c" through, which str.strip() trims and
    bytes.strip() does not."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            if value == b"application/json":
                return True
            header = email.message.Message()
            header["content-type"] = value.decode("latin-1")
            subtype = header.get_content_subtype()
            return header.get_content_maintype() == "application" and (
                subtype == "json" or subtype.endswith("+json"))
    return False


class StrictJSONBody:
    """422 for JSON bodies that are not strict JSON; everything else passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The inference protocol's routes read their bodies themselves: a binary tensor
        # follows the JSON there (service.api.v2.tensors), parsed with `parse` all the same.
        if scope["type"] != "http" or not _is_json(scope) or is_protocol_path(scope["path"]):
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
            await reject_too_large(send, error.limit, scope["path"])
            return
        body = b"".join(chunks)
        if body:
            document, problem = parse(body)
            if problem is not None:
                await send_error(send, 422, "invalid_json", problem.message,
                                 [problem.as_dict()])
                return
            scope[PARSED_BODY] = document  # parsed once: FastPredict reads it from here
        await self.app(scope, replaying(body, receive), send)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` for the app below a middleware that has read the whole request `body`: it
    answers that body once, as one message, then whatever the client sends next (a
    disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
