"""service.store.api_keys on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from service.store import api_keys as key_rows
from service.store.base import utcnow
from service.store.session import Database


def test_a_key_belongs_to_its_owner_until_revoked(db: Database) -> None:
    with db.read() as session:
        assert key_rows.any_exist(session) is False
    with db.write() as session:
        key_rows.create(session, key_id="k1", owner="ann", key_hash="a" * 64, prefix="dn_aaaaa")
        key_rows.create(session, key_id="k2", owner="bob", key_hash="b" * 64, prefix="dn_bbbbb")
    with db.read() as session:
        assert key_rows.any_exist(session) is True
        assert key_rows.active_owner(session, "a" * 64) == "ann"
        assert key_rows.active_owner(session, "c" * 64) is None
    with db.write() as session:
        revoked = key_rows.revoke(session, "k1")
        assert revoked is not None and revoked.owner == "ann"
        assert key_rows.revoke(session, "no-such-key") is None
    with db.read() as session:
        assert key_rows.active_owner(session, "a" * 64) is None
        assert key_rows.active_owner(session, "b" * 64) == "bob"
        assert key_rows.any_exist(session) is True  # a revoked key still counts


def test_all_keys_are_listed_oldest_first(db: Database) -> None:
    now = utcnow()
    with db.write() as session:
        for key_id, age in (("young", 1), ("old", 30), ("middle", 10)):
            record = key_rows.create(session, key_id=key_id, owner="ann",
                                     key_hash=key_id.ljust(64, "0"), prefix="dn_")
            record.created_at = now - dt.timedelta(seconds=age)
        key_rows.revoke(session, "middle")
    with db.read() as session:
        listed = key_rows.all_keys(session)
    assert [key.id for key in listed] == ["old", "middle", "young"]
    assert [key.revoked_at is not None for key in listed] == [False, True, False]
