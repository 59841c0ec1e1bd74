"""create_app: the FastAPI application with its database, executor and model cache."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from threadpoolctl import threadpool_limits

from service import __version__
from service.auth import Authenticator
from service.config import Settings, get_settings
from service.dashboard import pages as dashboard
from service.events.hub import EventHub
from service.serving.cache import ModelCache
from service.store.session import Database
from service.webhooks.sender import DeliverySender
from service.workers.executor import Executor, NoExecutor

from . import errors
from .body_limit import BodySizeLimit
from .deps import AppState, authorize
from .fast_predict import FastPredict
from .json_body import StrictJSONBody
from .operation_ids import operation_id
from .request_metrics import RequestMetrics
from .routes import datasets, events, health, jobs, metrics, operations, predictions, sweeps
from .v2 import routes as v2
from .v2.fast_infer import FastInfer

log = logging.getLogger(__name__)

DESCRIPTION = """Train dropout neural networks over HTTP.

POST a job (network layers, dropout schedule, optimizer, data), watch its progress and
per-iteration metrics, predict with the trained model and download it. Every error has the
shape `{"error": {"code", "message", "details": [{"path", "message", ...}]}}`.
"""


def build_executor(settings: Settings, db: Database) -> Executor:
    """The executor the settings ask for (local worker processes by default)."""
    if settings.executor == "celery":
        from service.workers.celery_executor import CeleryExecutor

        return CeleryExecutor(settings, db)
    if settings.workers == 0:
        return NoExecutor()
    from service.workers.local import LocalExecutor

    return LocalExecutor(settings, db)


def create_app(settings: Settings | None = None, *, db: Database | None = None,
               executor: Executor | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.database_url,
                        busy_timeout_seconds=settings.sqlite_busy_timeout_seconds)
    executor = executor or build_executor(settings, db)
    state = AppState(settings=settings, db=db, executor=executor,
                     models=ModelCache(settings.model_cache_bytes,
                                       settings.model_cache_revalidate_seconds),
                     auth=Authenticator(db, settings), events=EventHub(db, settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not state.auth.enabled():
            log.warning("no API keys are configured: the service is open to anyone who can "
                        "reach it (set DROPNET_API_KEYS or run `dropnet keys create`)")
        # Predictions run concurrently in the thread pool; BLAS threads of their own would
        # only contend for the same cores (a (100, 64) x (64, 256) product: 0.03 ms on one
        # thread, 40-60 ms with two under load).
        blas = threadpool_limits(settings.serving_blas_threads)
        executor.start()
        sender = DeliverySender(db, settings)  # one per lifespan: a thread starts only once
        sender.start()
        try:
            yield
        finally:
            await state.events.close()
            sender.stop()
            executor.stop()
            blas.restore_original_limits()

    app = FastAPI(title="dropnet", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, generate_unique_id_function=operation_id)
    app.state.dropnet = state
    errors.install(app)
    # Outermost last: the size limit applies while the strict JSON check reads the body, and
    # the prediction hot path sees the body parsed.
    app.add_middleware(FastPredict)
    app.add_middleware(FastInfer)
    app.add_middleware(StrictJSONBody)
    app.add_middleware(BodySizeLimit, default_limit=settings.max_body_bytes,
                       upload_limit=settings.max_upload_bytes)
    app.add_middleware(RequestMetrics)
    for module in (health, operations, v2):  # v2: the server's health and metadata
        app.include_router(module.router)
    app.include_router(v2.models)  # each needs the caller's key, as /v1 does
    # Every /v1 route needs the caller's key, whether or not it uses the owner itself.
    # Predict first: the hottest path.
    for module in (predictions, jobs, metrics, datasets, sweeps, events):
        app.include_router(module.router, dependencies=[Depends(authorize)])
    if settings.dashboard:
        dashboard.install(app)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """Serve an OpenAPI schema whose error responses are the ones the API really sends."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = errors.document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
