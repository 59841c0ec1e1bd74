"""What the compose `scale` profile runs, on this machine's PostgreSQL and Redis: the image's
`dropnet migrate` and `dropnet worker`, and an API container with DROPNET_EXECUTOR=celery whose
job a worker container trains. A throw-away PostgreSQL database and Redis database 14 (the other
tests use 15) keep the other users of those servers undisturbed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, drop_postgres, require_service
from tests.container.conftest import IMAGE, RUN_OPTIONS, podman, unique, walkthrough_spec

pytestmark = pytest.mark.container

BROKER_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def scale_env(image: str) -> Iterator[dict[str, str]]:
    """The environment of the scale profile's containers: an empty PostgreSQL database (not
    migrated) and Redis database 14, emptied of this test's keys afterwards."""
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    require_service("Redis", BROKER_URL, 6379)
    name = f"dropnet_container_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    broker = redis.Redis.from_url(BROKER_URL)
    yield {"DROPNET_DATABASE_URL": url, "DROPNET_BROKER_URL": BROKER_URL,
           "DROPNET_LOG_FORMAT": "json"}
    keys = broker.keys("*")
    if keys:
        broker.delete(*keys)
    broker.close()
    drop_postgres(name)


def test_migrate_then_a_worker_container_trains_what_the_api_container_queues(
        containers, scale_env):
    migrate = podman("run", "--rm", *RUN_OPTIONS,
                     *[f"--env={key}={value}" for key, value in scale_env.items()],
                     IMAGE, "dropnet", "migrate")
    assert "database at head" in migrate.stdout

    worker_host = unique("worker")
    worker = containers(env=scale_env, hostname=worker_host,
                        command=["dropnet", "worker", "--concurrency", "1"])
    api = containers(env={**scale_env, "DROPNET_EXECUTOR": "celery", "DROPNET_WORKERS": "0"})
    ready = api.wait_ready()
    assert ready["checks"]["workers"]["executor"] == "celery"

    response = api.client.post("/v1/jobs", json=walkthrough_spec())
    assert response.status_code == 201, response.text
    job = api.wait_job(response.json()["id"])
    assert job["status"] == "succeeded", f"{job['error']}\n{worker.logs()}"
    assert job["metrics"]["test_accuracy"] > 0.95
    assert job["worker"]["host"] == worker_host, "trained by the worker container"
    assert api.client.post(f"/v1/jobs/{job['id']}/predict",
                           json={"inputs": [[0.0] * 64]}).status_code == 200
