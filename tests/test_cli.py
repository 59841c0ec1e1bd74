"""The dropnet command: migrate and keys, as an operator runs them."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, select

from service.api.app import create_app
from service.config import Settings
from service.store.models import ApiKey
from service.store.session import Database

DROPNET = str(Path(sys.executable).parent / "dropnet")


def dropnet(*args: str) -> str:
    result = subprocess.run([DROPNET, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_migrate_creates_the_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert "database at head" in dropnet("migrate", "--database-url", url)
    assert {"jobs", "metric_points", "api_keys"} <= set(inspect(create_engine(url))
                                                        .get_table_names())


@pytest.mark.postgres
def test_migrate_does_not_print_the_database_password(postgres_template):
    from tests.conftest import drop_postgres, fresh_postgres

    url, name = fresh_postgres(postgres_template)
    try:
        with_password = url.replace("postgres@", "postgres:s3cret-pw@", 1)
        assert with_password != url  # trust auth accepts any password
        printed = dropnet("migrate", "--database-url", with_password)
    finally:
        drop_postgres(name)
    assert "database at head: postgresql" in printed and "***@" in printed
    assert "s3cret-pw" not in printed


def test_keys_create_list_and_revoke(tmp_path, monkeypatch):
    import service.auth

    monkeypatch.setattr(service.auth, "CACHE_SECONDS", 0.0)
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    dropnet("migrate", "--database-url", url)
    created = dropnet("keys", "--database-url", url, "create", "--owner", "alice")
    fields = dict(line.split(": ", 1) for line in created.splitlines() if ": " in line)
    key, key_id = fields["key"], fields["id"]
    db = Database(url)
    with db.read() as session:
        stored = session.scalar(select(ApiKey))
        assert stored.key_hash != key and len(stored.key_hash) == 64  # only the hash is kept
    assert f"{key_id}  alice" in dropnet("keys", "--database-url", url, "list")

    settings = Settings(database_url=url, workers=0)
    with TestClient(create_app(settings, db=db)) as client:
        auth = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/jobs", headers=auth).status_code == 200
        assert client.get("/v1/jobs").status_code == 401
        dropnet("keys", "--database-url", url, "revoke", key_id)
        assert client.get("/v1/jobs", headers=auth).status_code == 401
    assert "revoked" in dropnet("keys", "--database-url", url, "list")
    db.dispose()


def test_keys_give_each_owner_a_webhook_secret_that_signs_its_deliveries(tmp_path):
    from standardwebhooks import Webhook

    from service.webhooks.outbox import message_id
    from service.webhooks.owner_secrets import signing_secret
    from service.webhooks.signatures import signed_headers

    url = f"sqlite:///{tmp_path / 'keys.db'}"
    dropnet("migrate", "--database-url", url)
    created = dropnet("keys", "--database-url", url, "create", "--owner", "alice")
    fields = dict(line.split(": ", 1) for line in created.splitlines() if ": " in line)
    secret = fields["webhook secret"]
    assert secret.startswith("whsec_")
    assert dropnet("keys", "--database-url", url, "secret", "--owner", "alice").strip() == secret
    db = Database(url)
    with db.write() as session:  # the secret the sender signs alice's deliveries with
        signer = signing_secret(session, "alice", Settings(database_url=url, _env_file=None))
    body = b'{"type":"job.succeeded"}'
    headers = signed_headers(signer, message_id("d1"), int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == {"type": "job.succeeded"}
    rotated = dropnet("keys", "--database-url", url, "secret", "--owner", "alice",
                      "--rotate").strip()
    assert rotated.startswith("whsec_") and rotated != secret
    assert dropnet("keys", "--database-url", url, "secret", "--owner", "alice").strip() == rotated
    db.dispose()
