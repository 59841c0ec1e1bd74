"""Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` of
"<webhook-id>.<webhook-timestamp>.<body>", keyed by the base64 part of a `whsec_` secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    """A new signing secret: "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret; ValueError saying what was expected."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"expected a webhook secret starting with {SECRET_PREFIX!r}, received "
                         f"one starting with {secret[:6]!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except binascii.Error:
        raise ValueError("expected base64 after 'whsec_' in the webhook secret") from None
    if len(key) < 16:
        raise ValueError(f"expected a webhook secret of at least 16 bytes, received {len(key)}")
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """"v1,<base64 HMAC-SHA256 of id.timestamp.body>"."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt of message `message_id`."""
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id, timestamp, body)}
