"""The protocol's error shape, {"error": "<message>"}, for every error under /v2.

The rest of the API answers {"error": {"code", "message", "details"}}; under /v2 the same
errors are rendered as one string that keeps each detail's field, rule, expected and received
value, and a 422 (a request that breaks a rule) becomes the protocol's 400.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

PREFIX = "/v2"


def is_protocol_path(path: str) -> bool:
    """Whether `path` belongs to the inference protocol (its errors take its shape)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def protocol_status(status: int) -> int:
    """The status a /v2 error answers with: 400 for an invalid request, else `status`."""
    return 400 if status == 422 else status


def protocol_error_body(message: str, details: Sequence[Mapping[str, Any]] = ()) -> dict[str, str]:
    """{"error": "message: path: rule (expected ..., received ...); ..."}."""
    parts = []
    for detail in details:
        facts = []
        if detail.get("expected") is not None:
            facts.append(f"expected {detail['expected']}")
        if detail.get("received") is not None:
            facts.append(f"received {json.dumps(detail['received'])}")
        text = f"{detail.get('path') or 'body'}: {detail.get('message', '')}"
        parts.append(text + (f" ({', '.join(facts)})" if facts else ""))
    return {"error": "; ".join([message, *parts])}
