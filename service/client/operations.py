"""What each API operation sends and how its answer is read, shared by `Client` and
`AsyncClient` (sans I/O).

An operation is a generator: it yields the `Request`s it needs, is sent each `httpx.Response`
(already checked: 2xx, or a status the request accepts) and returns the typed answer. The
clients only differ in how they send.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from .models import (
    Attempt,
    BuiltinDatasets,
    Dataset,
    DatasetPage,
    Health,
    Job,
    JobPage,
    JobStatus,
    MetricKey,
    MetricPoint,
    MetricSeries,
    Prediction,
    Sweep,
    SweepPage,
)

T = TypeVar("T")
Operation = Generator["Request", httpx.Response, T]
Query = dict[str, str | int | float]


@dataclass(frozen=True)
class Request:
    """One HTTP request; `accept` lists non-2xx statuses that are answers, not errors."""

    method: str
    path: str
    params: Query = field(default_factory=dict)
    json: Any = None
    files: dict[str, tuple[str, bytes]] | None = None
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    accept: tuple[int, ...] = ()


def _query(**values: str | int | float | None) -> Query:
    return {name: value for name, value in values.items() if value is not None}


def segment(value: str) -> str:
    """A path segment: an id or metric key with `/`, `?`, `#`, ... escaped."""
    return quote(value, safe="")


def _keyed(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}


def _inputs(inputs: Any) -> Any:
    """Rows as JSON: numpy arrays by `tolist()`, sequences as they are."""
    return inputs.tolist() if hasattr(inputs, "tolist") else inputs


def health() -> Operation[Health]:
    response = yield Request("GET", "/readyz", accept=(503,))
    return Health.model_validate_json(response.content)


def prometheus_metrics() -> Operation[str]:
    response = yield Request("GET", "/metrics")
    return response.text


def submit(spec: Mapping[str, Any], idempotency_key: str | None) -> Operation[Job]:
    response = yield Request("POST", "/v1/jobs", json=dict(spec),
                             headers=_keyed(idempotency_key))
    return Job.model_validate_json(response.content)


def get(job_id: str) -> Operation[Job]:
    response = yield Request("GET", f"/v1/jobs/{segment(job_id)}")
    return Job.model_validate_json(response.content)


def jobs(status: JobStatus | None, sweep_id: str | None, limit: int,
         cursor: str | None) -> Operation[JobPage]:
    response = yield Request("GET", "/v1/jobs", params=_query(
        status=status, sweep_id=sweep_id, limit=limit, cursor=cursor))
    return JobPage.model_validate_json(response.content)


def cancel(job_id: str) -> Operation[Job]:
    response = yield Request("POST", f"/v1/jobs/{segment(job_id)}/cancel")
    return Job.model_validate_json(response.content)


def delete(job_id: str) -> Operation[None]:
    yield Request("DELETE", f"/v1/jobs/{segment(job_id)}")


def attempts(job_id: str) -> Operation[list[Attempt]]:
    response = yield Request("GET", f"/v1/jobs/{segment(job_id)}/attempts")
    return [Attempt.model_validate(item) for item in response.json()["data"]]


def metrics(job_id: str) -> Operation[list[MetricKey]]:
    response = yield Request("GET", f"/v1/jobs/{segment(job_id)}/metrics")
    return [MetricKey.model_validate(item) for item in response.json()["data"]]


def history(job_id: str, key: str, start_step: int | None, end_step: int | None,
            max_points: int | None, page_size: int) -> Operation[MetricSeries]:
    """Every point of the series in the step range, following the pages; with `max_points`,
    the server's downsampled series (one page)."""
    points: list[MetricPoint] = []
    cursor: str | None = None
    path = f"/v1/jobs/{segment(job_id)}/metrics/{segment(key)}"
    while True:
        response = yield Request("GET", path, params=_query(
            start_step=start_step, end_step=end_step, max_points=max_points,
            limit=None if max_points is not None else page_size, cursor=cursor))
        page = response.json()
        points += [MetricPoint.model_validate(point) for point in page["points"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return MetricSeries(key=key, points=points, downsampled=page["downsampled"])


def predict(job_id: str, inputs: Any, mc_samples: int, seed: int) -> Operation[Prediction]:
    body: dict[str, Any] = {"inputs": _inputs(inputs)}
    if mc_samples:
        body |= {"mc_samples": mc_samples, "seed": seed}
    response = yield Request("POST", f"/v1/jobs/{segment(job_id)}/predict", json=body)
    return Prediction.model_validate_json(response.content)


def download_model(job_id: str, format: Literal["npz", "onnx"]) -> Operation[bytes]:
    response = yield Request("GET", f"/v1/jobs/{segment(job_id)}/model", params={"format": format})
    return response.content


def upload_dataset(file: str | Path | bytes, filename: str | None, name: str | None,
                   label_column: str | None, test_fraction: float | None,
                   split_seed: int | None, idempotency_key: str | None) -> Operation[Dataset]:
    """`file`: a path, or the bytes of an .npz or CSV (then `filename` says which)."""
    if isinstance(file, bytes):
        content, filename = file, filename or "upload"
    else:
        content, filename = Path(file).read_bytes(), filename or Path(file).name
    form = {key: str(value) for key, value in _query(
        name=name, label_column=label_column, test_fraction=test_fraction,
        split_seed=split_seed).items()}
    response = yield Request("POST", "/v1/datasets", files={"file": (filename, content)},
                             data=form, headers=_keyed(idempotency_key))
    return Dataset.model_validate_json(response.content)


def datasets(limit: int, cursor: str | None) -> Operation[DatasetPage]:
    response = yield Request("GET", "/v1/datasets", params=_query(limit=limit, cursor=cursor))
    return DatasetPage.model_validate_json(response.content)


def get_dataset(dataset_id: str) -> Operation[Dataset]:
    response = yield Request("GET", f"/v1/datasets/{segment(dataset_id)}")
    return Dataset.model_validate_json(response.content)


def delete_dataset(dataset_id: str) -> Operation[None]:
    yield Request("DELETE", f"/v1/datasets/{segment(dataset_id)}")


def builtin_datasets() -> Operation[BuiltinDatasets]:
    response = yield Request("GET", "/v1/datasets/builtin")
    return BuiltinDatasets.model_validate_json(response.content)


def sweep(spec: Mapping[str, Any], idempotency_key: str | None) -> Operation[Sweep]:
    response = yield Request("POST", "/v1/sweeps", json=dict(spec),
                             headers=_keyed(idempotency_key))
    return Sweep.model_validate_json(response.content)


def sweeps(limit: int, cursor: str | None) -> Operation[SweepPage]:
    response = yield Request("GET", "/v1/sweeps", params=_query(limit=limit, cursor=cursor))
    return SweepPage.model_validate_json(response.content)


def get_sweep(sweep_id: str) -> Operation[Sweep]:
    response = yield Request("GET", f"/v1/sweeps/{segment(sweep_id)}")
    return Sweep.model_validate_json(response.content)


def cancel_sweep(sweep_id: str) -> Operation[Sweep]:
    response = yield Request("POST", f"/v1/sweeps/{segment(sweep_id)}/cancel")
    return Sweep.model_validate_json(response.content)


def delete_sweep(sweep_id: str) -> Operation[None]:
    yield Request("DELETE", f"/v1/sweeps/{segment(sweep_id)}")


def runs_csv(sweep_id: str) -> Operation[str]:
    response = yield Request("GET", f"/v1/sweeps/{segment(sweep_id)}/runs.csv")
    return response.text
