"""Dependencies as Annotated aliases, so route signatures read like prose."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from service.auth import Authenticator
from service.config import Settings
from service.errors import ErrorDetail, InvalidInput
from service.events.hub import EventHub
from service.serving.cache import ModelCache
from service.store.session import Database
from service.workers.executor import Executor


@dataclass
class AppState:
    """What the routes share: one per app."""

    settings: Settings
    db: Database
    executor: Executor
    models: ModelCache
    auth: Authenticator
    events: EventHub


# Dependencies that do no I/O are async: a plain `def` costs a trip through the thread pool.
async def get_state(request: Request) -> AppState:
    return request.app.state.dropnet


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


def read_session(state: StateDep) -> Iterator[Session]:
    with state.db.read() as session:
        yield session


def write_session(state: StateDep) -> Iterator[Session]:
    """A session whose transaction begins IMMEDIATE on SQLite; the route commits."""
    with state.db.write_session() as session:
        yield session


# The bearer scheme the OpenAPI schema declares on every /v1 operation (errors.py's
# document_errors); the Authenticator reads the header itself so that it can say what is wrong
# with it.
BEARER_SCHEME = {"ApiKey": {"type": "http", "scheme": "bearer",
                            "description": "`Authorization: Bearer <key>`; a server with no API "
                                           "keys configured is open and ignores it"}}


async def authorize(request: Request) -> None:
    """Every /v1 route's gate: the caller's key (401) and plain parameters (422). Leaves the
    owner in request.state for `Owner`. One dependency without sub-dependencies, because
    each dependency FastAPI resolves costs tens of microseconds per request."""
    plain_parameters(request)
    state: AppState = request.app.state.dropnet
    authorization = request.headers.get("authorization")
    owner = state.auth.cached_owner(authorization)
    if owner is None:  # the database must be asked: not on the event loop
        owner = await run_in_threadpool(state.auth.owner, authorization)
    request.state.owner = owner


async def current_owner(request: Request) -> str:
    """The caller's owner name ("" on an open server), as `authorize` found it."""
    owner = getattr(request.state, "owner", None)
    if owner is None:
        await authorize(request)
        owner = request.state.owner
    return owner


def plain_parameters(request: Request) -> None:
    """422 for a query parameter the route does not take (a misspelt `limt=5` would be
    silently ignored), and for a path or query parameter holding NUL: no id, key or cursor
    contains one, and PostgreSQL refuses to even compare such a string."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is not None:
        known = _query_names(dependant)
        for name in request.query_params:
            if name not in known:
                raise InvalidInput(f"unknown query parameter {name[:100]!r}", [ErrorDetail(
                    name[:100], "this operation takes no such query parameter",
                    type="unknown_parameter",
                    expected=", ".join(sorted(known)) or "no query parameters")])
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"invalid parameter {name}", [ErrorDetail(
                name, "must not contain NUL characters", type="nul_character",
                received=value[:100])])


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadSession = Annotated[Session, Depends(read_session)]
WriteSession = Annotated[Session, Depends(write_session)]
Owner = Annotated[str, Depends(current_owner)]
