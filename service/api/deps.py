"""Dependencies as Annotated aliases, so route signatures read like prose."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.auth import Authenticator
from service.config import Settings
from service.errors import ErrorDetail, InvalidInput
from service.store.session import Database
from service.workers.executor import Executor

from .model_cache import ModelCache


@dataclass
class AppState:
    """What the routes share: one per app."""

    settings: Settings
    db: Database
    executor: Executor
    models: ModelCache
    auth: Authenticator


def get_state(request: Request) -> AppState:
    return request.app.state.dropnet


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def read_session(state: StateDep) -> Iterator[Session]:
    with state.db.read() as session:
        yield session


def write_session(state: StateDep) -> Iterator[Session]:
    """A session whose transaction begins IMMEDIATE on SQLite; the route commits."""
    with state.db.write_session() as session:
        yield session


# Declares the scheme in the OpenAPI schema; the Authenticator reads the header itself so that
# it can say what is wrong with it.
bearer_key = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                        description="`Authorization: Bearer <key>`; a server with no API keys "
                                    "configured is open and ignores it")


def current_owner(request: Request, state: StateDep,
                  _credentials: Annotated[HTTPAuthorizationCredentials | None,
                                          Security(bearer_key)]) -> str:
    """The caller's owner name from `Authorization: Bearer <key>` ("" on an open server)."""
    return state.auth.owner(request.headers.get("authorization"))


async def plain_parameters(request: Request) -> None:
    """422 for a query parameter the route does not take (a misspelt `limt=5` would be
    silently ignored), and for a path or query parameter holding NUL: no id, key or cursor
    contains one, and PostgreSQL refuses to even compare such a string. Async: it does no
    I/O, so it need not cost a trip through the thread pool."""
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
