"""One INSERT ... ON CONFLICT for both backends (PostgreSQL and SQLite spell it alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .base import Base


def upsert(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], *,
           conflict: Sequence[str], update: Sequence[str] = ()) -> None:
    """Insert `rows` (column name -> value) into `model`'s table in one statement.

    A row whose `conflict` columns (a primary key or unique constraint) match a stored row
    sets that row's `update` columns to the new values instead, or, with no `update` columns,
    is skipped. Nothing is read back first.
    """
    if not rows:
        return
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql"
              else sqlite.insert)
    statement = insert(model).values(list(rows))
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict),
            set_={column: statement.excluded[column] for column in update})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    session.execute(statement)
