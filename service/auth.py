"""API keys: optional bearer tokens that decide who owns (and may see) jobs and datasets.

Keys come from DROPNET_API_KEYS (owner:key, comma separated) and from the api_keys table
(`dropnet keys create|revoke`), where only their SHA-256 is stored. With no key anywhere the
service is open and every caller is the anonymous owner "". A revoked key still counts as a key
here: revoking the last one locks the service rather than opening it to anyone. Lookups are
cached for `CACHE_SECONDS`, so a revoked key stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from .config import Settings
from .errors import Unauthorized
from .store import api_keys as key_rows
from .store.session import Database

ANONYMOUS = ""
CACHE_SECONDS = 5.0
KEY_PREFIX = "dn_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class _QueryNeeded(Exception):
    """The answer is not cached: the database must be asked."""


class Authenticator:
    """Maps an Authorization header to an owner, or refuses it."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self._static = {hash_key(key): owner for key, owner in settings.static_api_keys().items()}
        self._lock = threading.Lock()
        self._table_has_keys: tuple[float, bool] = (0.0, False)
        self._known: dict[str, tuple[float, str | None]] = {}

    def enabled(self) -> bool:
        return bool(self._static) or self._table_keys_exist(may_query=True)

    def cached_owner(self, authorization: str | None) -> str | None:
        """What owner() answers when that needs no database query (raising Unauthorized the
        same way), else None. Lets async callers skip a thread hop on the hot path."""
        try:
            return self.owner(authorization, may_query=False)
        except _QueryNeeded:
            return None

    def owner(self, authorization: str | None, *, may_query: bool = True) -> str:
        if not (self._static or self._table_keys_exist(may_query=may_query)):
            return ANONYMOUS
        if not authorization:
            raise Unauthorized("this server requires an API key: send "
                               "'Authorization: Bearer <key>'",
                               headers={"WWW-Authenticate": "Bearer"})
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("expected 'Authorization: Bearer <key>'",
                               headers={"WWW-Authenticate": "Bearer"})
        digest = hash_key(key.strip())
        for known, owner in self._static.items():
            if hmac.compare_digest(known, digest):
                return owner
        table_owner = self._table_owner(digest, may_query=may_query)
        if table_owner is None:
            raise Unauthorized("unknown or revoked API key",
                               headers={"WWW-Authenticate": "Bearer"})
        return table_owner

    def _table_keys_exist(self, *, may_query: bool) -> bool:
        checked, value = self._table_has_keys
        if time.monotonic() - checked < CACHE_SECONDS:
            return value
        if not may_query:
            raise _QueryNeeded
        with self.db.read() as session:
            value = key_rows.any_exist(session)
        self._table_has_keys = (time.monotonic(), value)
        return value

    def _table_owner(self, digest: str, *, may_query: bool) -> str | None:
        with self._lock:
            cached = self._known.get(digest)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        if not may_query:
            raise _QueryNeeded
        with self.db.read() as session:
            owner = key_rows.active_owner(session, digest)
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[digest] = (time.monotonic(), owner)
        return owner
