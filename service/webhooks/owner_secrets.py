"""Which secret signs an owner's webhooks: the owner's own (created by `dropnet keys`, or on
the first delivery), else the deployment's DROPNET_WEBHOOK_SECRET."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.config import Settings
from service.store import deliveries as delivery_rows

from .signatures import generate_secret


def signing_secret(session: Session, owner: str, settings: Settings) -> str:
    """The owner's stored secret, else DROPNET_WEBHOOK_SECRET, else a new secret stored for
    the owner (the caller's session must be able to write)."""
    stored = delivery_rows.secret_of(session, owner)
    if stored is not None:
        return stored
    if settings.webhook_secret:
        return settings.webhook_secret
    return rotate(session, owner)


def own_secret(session: Session, owner: str) -> str:
    """The owner's own secret, created now if it has none (what `dropnet keys` prints)."""
    return delivery_rows.secret_of(session, owner) or rotate(session, owner)


def rotate(session: Session, owner: str) -> str:
    """Give the owner a new secret (the old one stops signing at once); returns it."""
    secret = generate_secret()
    delivery_rows.set_secret(session, owner, secret)
    return secret
