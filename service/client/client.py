"""`Client` and `AsyncClient`: typed methods for every dropnet route, over httpx.

    with Client("http://127.0.0.1:8000", api_key="...") as dropnet:
        job = dropnet.submit(spec)
        for event in dropnet.follow(job.id):
            ...
        print(dropnet.predict(job.id, rows, mc_samples=50).probabilities)

Every refused request raises `DropnetError` (the API's code, message, details, status).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx

from .. import __version__
from . import operations as op
from .errors import DropnetError
from .events import (
    JOB_EVENT_TYPES,
    JOB_EVENTS,
    SWEEP_EVENT_TYPES,
    SWEEP_EVENTS,
    JobEvent,
    SweepEvent,
)
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
    MetricSeries,
    Prediction,
    Sweep,
    SweepPage,
)
from .operations import Operation, Request
from .streams import NOTHING_FOLLOWS, RETRIED_STATUSES, EventStream

T = TypeVar("T")
E = TypeVar("E")
DEFAULT_URL = "http://127.0.0.1:8000"


class _ClientBase:
    """What both clients share: connection options, answer checks, stream set-up."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float,
                 stream_read_timeout: float, max_reconnects: int,
                 reconnect_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"User-Agent": f"dropnet-client/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = httpx.Timeout(timeout)
        # The server sends a keep-alive comment every 15 s (by default): a read that waits
        # longer means the connection is gone.
        self._stream_timeout = httpx.Timeout(timeout, read=stream_read_timeout)
        self._max_reconnects = max_reconnects
        self._reconnect_seconds = reconnect_seconds

    def _checked(self, request: Request, response: httpx.Response) -> httpx.Response:
        if response.is_success or response.status_code in request.accept:
            return response
        raise DropnetError.from_response(response)

    def _unreachable(self, error: httpx.TransportError) -> DropnetError:
        return DropnetError.unreachable(self.base_url, error)

    def _job_stream(self, job_id: str, last_event_id: str | None,
                    since_now: bool) -> EventStream[JobEvent]:
        return EventStream(f"/v1/jobs/{op.segment(job_id)}/events", JOB_EVENTS,
                           JOB_EVENT_TYPES, last_event_id=last_event_id, since_now=since_now,
                           max_reconnects=self._max_reconnects,
                           reconnect_seconds=self._reconnect_seconds)

    def _sweep_stream(self, sweep_id: str, last_event_id: str | None,
                      since_now: bool) -> EventStream[SweepEvent]:
        return EventStream(f"/v1/sweeps/{op.segment(sweep_id)}/events", SWEEP_EVENTS,
                           SWEEP_EVENT_TYPES, last_event_id=last_event_id,
                           since_now=since_now, max_reconnects=self._max_reconnects,
                           reconnect_seconds=self._reconnect_seconds)


def _timed_out(job: Job, timeout: float) -> DropnetError:
    return DropnetError(None, "wait_timeout", f"job {job.id} is still {job.status} after "
                        f"{timeout} s (iteration {job.progress.iteration} of "
                        f"{job.progress.total})")


class Client(_ClientBase):
    """A blocking client. `timeout`: seconds for each request; a followed stream tolerates
    `stream_read_timeout` seconds of silence and `max_reconnects` failed reconnections in a
    row, `reconnect_seconds` apart (growing), before `follow` raises."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None,
                 timeout: float = 30.0, *, stream_read_timeout: float = 60.0,
                 max_reconnects: int = 10, reconnect_seconds: float = 0.5,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(base_url, api_key, timeout, stream_read_timeout, max_reconnects,
                         reconnect_seconds)
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers,
                                  timeout=self._timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, operation: Operation[T]) -> T:
        request = next(operation)
        while True:
            try:
                response = self._http.request(
                    request.method, request.path, params=request.params, json=request.json,
                    files=request.files, data=request.data, headers=request.headers)
            except httpx.TransportError as error:
                raise self._unreachable(error) from error
            try:
                request = operation.send(self._checked(request, response))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _follow(self, stream: EventStream[E]) -> Iterator[E]:
        while not stream.ended:
            request = stream.request()
            try:
                with self._http.stream(request.method, request.path, params=request.params,
                                       headers=request.headers,
                                       timeout=self._stream_timeout) as response:
                    if response.status_code in RETRIED_STATUSES:
                        time.sleep(stream.dropped(f"HTTP {response.status_code}"))
                        continue
                    if response.status_code == NOTHING_FOLLOWS:
                        return
                    if not response.is_success:
                        response.read()
                        raise DropnetError.from_response(response)
                    for line in response.iter_lines():
                        event = stream.feed(line)
                        if event is not None:
                            yield event
            except httpx.TransportError as error:
                time.sleep(stream.dropped(f"{type(error).__name__}: {error}"))
                continue
            if not stream.ended:
                time.sleep(stream.dropped("the stream closed before its end event"))

    # -- service ----------------------------------------------------------------------------

    def health(self) -> Health:
        """GET /readyz: ready or not, with each check (a 503 is an answer, not an error)."""
        return self._run(op.health())

    def prometheus_metrics(self) -> str:
        """GET /metrics: the Prometheus text exposition."""
        return self._run(op.prometheus_metrics())

    # -- jobs -------------------------------------------------------------------------------

    def submit(self, spec: Mapping[str, Any], *, idempotency_key: str | None = None) -> Job:
        """POST /v1/jobs: queue a job; the answer holds the spec with defaults filled in."""
        return self._run(op.submit(spec, idempotency_key))

    def get(self, job_id: str) -> Job:
        return self._run(op.get(job_id))

    def jobs(self, *, status: JobStatus | None = None, sweep_id: str | None = None,
             limit: int = 50, cursor: str | None = None) -> JobPage:
        """One page of jobs, newest first."""
        return self._run(op.jobs(status, sweep_id, limit, cursor))

    def wait(self, job_id: str, *, timeout: float | None = None,
             poll_seconds: float = 0.5) -> Job:
        """Poll until the job has finished (succeeded, failed or cancelled); raises
        DropnetError `wait_timeout` after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (job := self.get(job_id)).finished:
            if deadline is not None and time.monotonic() >= deadline:
                raise _timed_out(job, timeout or 0.0)
            time.sleep(poll_seconds)
        return job

    def follow(self, job_id: str, *, last_event_id: str | None = None,
               since_now: bool = False) -> Iterator[JobEvent]:
        """The job's live events (status, progress, metrics, then end), from its first event
        (or after `last_event_id`, or from now); reconnects with Last-Event-ID when the
        connection drops, so no event is lost or repeated. Ends after the `end` event."""
        return self._follow(self._job_stream(job_id, last_event_id, since_now))

    def cancel(self, job_id: str) -> Job:
        return self._run(op.cancel(job_id))

    def delete(self, job_id: str) -> None:
        """Delete a finished job with its metrics and model."""
        self._run(op.delete(job_id))

    def attempts(self, job_id: str) -> list[Attempt]:
        return self._run(op.attempts(job_id))

    def metrics(self, job_id: str) -> list[MetricKey]:
        """The job's metric keys with count, first/last step and last value."""
        return self._run(op.metrics(job_id))

    def history(self, job_id: str, key: str, *, start_step: int | None = None,
                end_step: int | None = None, max_points: int | None = None,
                page_size: int = 1000) -> MetricSeries:
        """Every point of one metric (all pages), or at most `max_points` downsampled."""
        return self._run(op.history(job_id, key, start_step, end_step, max_points, page_size))

    def predict(self, job_id: str, inputs: Any, *, mc_samples: int = 0,
                seed: int = 0) -> Prediction:
        """Classes and probabilities for `inputs` (rows shaped like the model's input: a
        list or a numpy array); `mc_samples` > 0: Monte-Carlo dropout with uncertainty."""
        return self._run(op.predict(job_id, inputs, mc_samples, seed))

    def download_model(self, job_id: str, *, format: Literal["npz", "onnx"] = "npz") -> bytes:
        return self._run(op.download_model(job_id, format))

    # -- datasets ---------------------------------------------------------------------------

    def upload_dataset(self, file: str | Path | bytes, *, filename: str | None = None,
                       name: str | None = None, label_column: str | None = None,
                       test_fraction: float | None = None, split_seed: int | None = None,
                       idempotency_key: str | None = None) -> Dataset:
        """Upload an .npz (x_train, y_train, x_test, y_test) or a CSV with a header."""
        return self._run(op.upload_dataset(file, filename, name, label_column, test_fraction,
                                           split_seed, idempotency_key))

    def datasets(self, *, limit: int = 50, cursor: str | None = None) -> DatasetPage:
        return self._run(op.datasets(limit, cursor))

    def get_dataset(self, dataset_id: str) -> Dataset:
        return self._run(op.get_dataset(dataset_id))

    def delete_dataset(self, dataset_id: str) -> None:
        self._run(op.delete_dataset(dataset_id))

    def builtin_datasets(self) -> BuiltinDatasets:
        return self._run(op.builtin_datasets())

    # -- sweeps -----------------------------------------------------------------------------

    def sweep(self, spec: Mapping[str, Any], *, idempotency_key: str | None = None) -> Sweep:
        """POST /v1/sweeps: create a sweep (`name`, `base`, `parameters`, ...)."""
        return self._run(op.sweep(spec, idempotency_key))

    def sweeps(self, *, limit: int = 50, cursor: str | None = None) -> SweepPage:
        return self._run(op.sweeps(limit, cursor))

    def get_sweep(self, sweep_id: str) -> Sweep:
        """The sweep with its runs, best run and summary per swept value."""
        return self._run(op.get_sweep(sweep_id))

    def cancel_sweep(self, sweep_id: str) -> Sweep:
        return self._run(op.cancel_sweep(sweep_id))

    def delete_sweep(self, sweep_id: str) -> None:
        self._run(op.delete_sweep(sweep_id))

    def runs_csv(self, sweep_id: str) -> str:
        return self._run(op.runs_csv(sweep_id))

    def follow_sweep(self, sweep_id: str, *, last_event_id: str | None = None,
                     since_now: bool = False) -> Iterator[SweepEvent]:
        """The sweep's run events, then its end event, resuming like `follow`."""
        return self._follow(self._sweep_stream(sweep_id, last_event_id, since_now))


class AsyncClient(_ClientBase):
    """The same methods as `Client`, awaitable; `follow` is an async iterator."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None,
                 timeout: float = 30.0, *, stream_read_timeout: float = 60.0,
                 max_reconnects: int = 10, reconnect_seconds: float = 0.5,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, api_key, timeout, stream_read_timeout, max_reconnects,
                         reconnect_seconds)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers,
                                       timeout=self._timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, operation: Operation[T]) -> T:
        request = next(operation)
        while True:
            try:
                response = await self._http.request(
                    request.method, request.path, params=request.params, json=request.json,
                    files=request.files, data=request.data, headers=request.headers)
            except httpx.TransportError as error:
                raise self._unreachable(error) from error
            try:
                request = operation.send(self._checked(request, response))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def _follow(self, stream: EventStream[E]) -> AsyncIterator[E]:
        while not stream.ended:
            request = stream.request()
            try:
                async with self._http.stream(request.method, request.path,
                                             params=request.params, headers=request.headers,
                                             timeout=self._stream_timeout) as response:
                    if response.status_code in RETRIED_STATUSES:
                        await asyncio.sleep(stream.dropped(f"HTTP {response.status_code}"))
                        continue
                    if response.status_code == NOTHING_FOLLOWS:
                        return
                    if not response.is_success:
                        await response.aread()
                        raise DropnetError.from_response(response)
                    async for line in response.aiter_lines():
                        event = stream.feed(line)
                        if event is not None:
                            yield event
            except httpx.TransportError as error:
                await asyncio.sleep(stream.dropped(f"{type(error).__name__}: {error}"))
                continue
            if not stream.ended:
                await asyncio.sleep(stream.dropped("the stream closed before its end event"))

    async def health(self) -> Health:
        return await self._run(op.health())

    async def prometheus_metrics(self) -> str:
        return await self._run(op.prometheus_metrics())

    async def submit(self, spec: Mapping[str, Any], *,
                     idempotency_key: str | None = None) -> Job:
        return await self._run(op.submit(spec, idempotency_key))

    async def get(self, job_id: str) -> Job:
        return await self._run(op.get(job_id))

    async def jobs(self, *, status: JobStatus | None = None, sweep_id: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> JobPage:
        return await self._run(op.jobs(status, sweep_id, limit, cursor))

    async def wait(self, job_id: str, *, timeout: float | None = None,
                   poll_seconds: float = 0.5) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (job := await self.get(job_id)).finished:
            if deadline is not None and time.monotonic() >= deadline:
                raise _timed_out(job, timeout or 0.0)
            await asyncio.sleep(poll_seconds)
        return job

    def follow(self, job_id: str, *, last_event_id: str | None = None,
               since_now: bool = False) -> AsyncIterator[JobEvent]:
        return self._follow(self._job_stream(job_id, last_event_id, since_now))

    async def cancel(self, job_id: str) -> Job:
        return await self._run(op.cancel(job_id))

    async def delete(self, job_id: str) -> None:
        await self._run(op.delete(job_id))

    async def attempts(self, job_id: str) -> list[Attempt]:
        return await self._run(op.attempts(job_id))

    async def metrics(self, job_id: str) -> list[MetricKey]:
        return await self._run(op.metrics(job_id))

    async def history(self, job_id: str, key: str, *, start_step: int | None = None,
                      end_step: int | None = None, max_points: int | None = None,
                      page_size: int = 1000) -> MetricSeries:
        return await self._run(op.history(job_id, key, start_step, end_step, max_points,
                                          page_size))

    async def predict(self, job_id: str, inputs: Any, *, mc_samples: int = 0,
                      seed: int = 0) -> Prediction:
        return await self._run(op.predict(job_id, inputs, mc_samples, seed))

    async def download_model(self, job_id: str, *,
                             format: Literal["npz", "onnx"] = "npz") -> bytes:
        return await self._run(op.download_model(job_id, format))

    async def upload_dataset(self, file: str | Path | bytes, *, filename: str | None = None,
                             name: str | None = None, label_column: str | None = None,
                             test_fraction: float | None = None,
                             split_seed: int | None = None,
                             idempotency_key: str | None = None) -> Dataset:
        return await self._run(op.upload_dataset(file, filename, name, label_column,
                                                 test_fraction, split_seed, idempotency_key))

    async def datasets(self, *, limit: int = 50, cursor: str | None = None) -> DatasetPage:
        return await self._run(op.datasets(limit, cursor))

    async def get_dataset(self, dataset_id: str) -> Dataset:
        return await self._run(op.get_dataset(dataset_id))

    async def delete_dataset(self, dataset_id: str) -> None:
        await self._run(op.delete_dataset(dataset_id))

    async def builtin_datasets(self) -> BuiltinDatasets:
        return await self._run(op.builtin_datasets())

    async def sweep(self, spec: Mapping[str, Any], *,
                    idempotency_key: str | None = None) -> Sweep:
        return await self._run(op.sweep(spec, idempotency_key))

    async def sweeps(self, *, limit: int = 50, cursor: str | None = None) -> SweepPage:
        return await self._run(op.sweeps(limit, cursor))

    async def get_sweep(self, sweep_id: str) -> Sweep:
        return await self._run(op.get_sweep(sweep_id))

    async def cancel_sweep(self, sweep_id: str) -> Sweep:
        return await self._run(op.cancel_sweep(sweep_id))

    async def delete_sweep(self, sweep_id: str) -> None:
        await self._run(op.delete_sweep(sweep_id))

    async def runs_csv(self, sweep_id: str) -> str:
        return await self._run(op.runs_csv(sweep_id))

    def follow_sweep(self, sweep_id: str, *, last_event_id: str | None = None,
                     since_now: bool = False) -> AsyncIterator[SweepEvent]:
        return self._follow(self._sweep_stream(sweep_id, last_event_id, since_now))
