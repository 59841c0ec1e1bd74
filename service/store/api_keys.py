"""API key rows, stored as the SHA-256 of the key. Functions take the caller's session and
never commit."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from .base import utcnow
from .models import ApiKey


def any_exist(session: Session) -> bool:
    """Whether the table holds any key, revoked ones included."""
    return bool(session.scalar(select(exists().select_from(ApiKey))))


def active_owner(session: Session, key_hash: str) -> str | None:
    """The owner of the unrevoked key whose hash is `key_hash`, or None."""
    return session.scalar(select(ApiKey.owner).where(ApiKey.key_hash == key_hash,
                                                     ApiKey.revoked_at.is_(None)))


def create(session: Session, *, key_id: str, owner: str, key_hash: str, prefix: str) -> ApiKey:
    """Add a key for `owner`; `prefix` is the key's first characters, kept to recognise it."""
    record = ApiKey(id=key_id, owner=owner, key_hash=key_hash, prefix=prefix)
    session.add(record)
    return record


def revoke(session: Session, key_id: str) -> ApiKey | None:
    """Mark the key revoked now; None when no key has that id."""
    record = session.get(ApiKey, key_id)
    if record is not None:
        record.revoked_at = utcnow()
    return record


def all_keys(session: Session) -> list[ApiKey]:
    """Every key, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))
