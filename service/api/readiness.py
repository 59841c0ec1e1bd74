"""What readiness means: the database answers with its schema at the migrations' head (all
that serving a model needs), and the workers are alive (what training needs too)."""

from __future__ import annotations

from typing import Any

from service.store.schema import answering_revision, head_revision
from service.store.session import Database

from .deps import AppState


def database_checks(db: Database) -> dict[str, dict[str, Any]]:
    """{"database": {"ok", ...}, "migrations": {"ok", "current", "head"}}; never raises."""
    try:
        current = answering_revision(db.engine)
        head = head_revision()
    except Exception as error:  # the point of a readiness check: report, never raise
        return {"database": {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}}
    return {"database": {"ok": True},
            "migrations": {"ok": current == head, "current": current, "head": head}}


def checks(state: AppState) -> dict[str, dict[str, Any]]:
    """database_checks plus {"workers": the executor's health}; never raises."""
    result = database_checks(state.db)
    try:
        result["workers"] = state.executor.health()
    except Exception as error:
        result["workers"] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return result


def passed(results: dict[str, dict[str, Any]]) -> bool:
    """Whether every check passed."""
    return all(check["ok"] for check in results.values())
