"""Every operation has a clean, stable operationId (what generated clients name methods by):
unique, `<tag>-<action>` in lower-case words, and exactly the list below, so that a rename
is a deliberate change of this file."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from service.api.app import create_app
from service.api.operation_ids import operation_id
from service.config import Settings
from service.workers.executor import NoExecutor

READABLE = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")
OPERATION_IDS = [
    ("GET /healthz", "health-healthz"),
    ("GET /readyz", "health-readyz"),
    ("GET /metrics", "operations-prometheus-metrics"),
    ("POST /v1/jobs/{job_id}/predict", "predictions-predict"),
    ("POST /v1/jobs", "jobs-submit"),
    ("GET /v1/jobs", "jobs-list"),
    ("GET /v1/jobs/{job_id}", "jobs-get"),
    ("DELETE /v1/jobs/{job_id}", "jobs-delete"),
    ("POST /v1/jobs/{job_id}/cancel", "jobs-cancel"),
    ("GET /v1/jobs/{job_id}/attempts", "jobs-list-attempts"),
    ("GET /v1/jobs/{job_id}/deliveries", "jobs-list-deliveries"),
    ("GET /v1/jobs/{job_id}/model", "jobs-download-model"),
    ("GET /v1/jobs/{job_id}/events", "events-job"),
    ("GET /v1/sweeps/{sweep_id}/events", "events-sweep"),
    ("GET /v1/jobs/{job_id}/metrics", "metrics-keys"),
    ("GET /v1/jobs/{job_id}/metrics/{key}", "metrics-history"),
    ("POST /v1/datasets", "datasets-upload"),
    ("GET /v1/datasets", "datasets-list"),
    ("GET /v1/datasets/builtin", "datasets-builtin"),
    ("GET /v1/datasets/{dataset_id}", "datasets-get"),
    ("DELETE /v1/datasets/{dataset_id}", "datasets-delete"),
    ("POST /v1/sweeps", "sweeps-create"),
    ("GET /v1/sweeps", "sweeps-list"),
    ("GET /v1/sweeps/{sweep_id}", "sweeps-get"),
    ("DELETE /v1/sweeps/{sweep_id}", "sweeps-delete"),
    ("POST /v1/sweeps/{sweep_id}/cancel", "sweeps-cancel"),
    ("GET /v1/sweeps/{sweep_id}/runs.csv", "sweeps-runs-csv"),
    ("GET /v1/sweeps/{sweep_id}/deliveries", "sweeps-list-deliveries"),
    ("GET /v2", "inference-protocol-v2-server-metadata"),
    ("GET /v2/health/live", "inference-protocol-v2-server-live"),
    ("GET /v2/health/ready", "inference-protocol-v2-server-ready"),
    ("GET /v2/models/{model_name}", "inference-protocol-v2-model-metadata"),
    ("GET /v2/models/{model_name}/versions/{model_version}",
     "inference-protocol-v2-model-version-metadata"),
    ("GET /v2/models/{model_name}/ready", "inference-protocol-v2-model-ready"),
    ("GET /v2/models/{model_name}/versions/{model_version}/ready",
     "inference-protocol-v2-model-version-ready"),
    ("POST /v2/models/{model_name}/infer", "inference-protocol-v2-infer"),
    ("POST /v2/models/{model_name}/versions/{model_version}/infer",
     "inference-protocol-v2-infer-version"),
]


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'dropnet.db'}"
    app = create_app(Settings(database_url=url, workers=0, _env_file=None),
                     executor=NoExecutor())
    return app.openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f"{method.upper()} {path}", operation["operationId"])
            for path, item in schema["paths"].items() for method, operation in item.items()]


def test_operation_ids_are_unique_and_readable(schema: dict[str, Any]) -> None:
    ids = [operation for _, operation in operations(schema)]
    assert len(ids) == len(set(ids)), sorted(ids)
    assert [name for name in ids if not READABLE.match(name)] == []


def test_operation_ids_are_the_reviewed_list(schema: dict[str, Any]) -> None:
    assert sorted(operations(schema)) == sorted(OPERATION_IDS)


def test_a_route_without_exactly_one_tag_is_refused_with_its_name() -> None:
    router = APIRouter(tags=["jobs", "extra"])

    @router.get("/two")
    def two_tags() -> None: ...

    app = FastAPI(generate_unique_id_function=operation_id)
    app.include_router(router)
    with pytest.raises(ValueError, match=r"two_tags \(/two\) needs exactly one tag"):
        app.openapi()
