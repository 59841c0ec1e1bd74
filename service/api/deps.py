"""Dependencies as Annotated aliases, so route signatures read like prose."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from service.auth import Authenticator
from service.config import Settings
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


def current_owner(state: StateDep,
                  authorization: Annotated[str | None, Header()] = None) -> str:
    """The caller's owner name from `Authorization: Bearer <key>` ("" on an open server)."""
    return state.auth.owner(authorization)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadSession = Annotated[Session, Depends(read_session)]
WriteSession = Annotated[Session, Depends(write_session)]
Owner = Annotated[str, Depends(current_owner)]
