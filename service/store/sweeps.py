"""Sweep rows and their runs: create, read, lock, page, per-status counts, run results, delete.

Every function takes the caller's session and never commits: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from . import sweep_summary
from .models import Job, MetricBlock, MetricSeries, Sweep


def add(session: Session, *, sweep_id: str, owner: str, name: str, spec: dict[str, Any],
        run_parameters: dict[str, dict[str, Any]], max_concurrent: int | None) -> Sweep:
    """Add a sweep row (its runs are added as jobs with `sweep_id` by the caller)."""
    sweep = Sweep(id=sweep_id, owner=owner, name=name, spec=spec,
                  run_parameters=run_parameters, max_concurrent=max_concurrent)
    session.add(sweep)
    session.flush()
    return sweep


def get(session: Session, sweep_id: str, *, owner: str | None = None) -> Sweep | None:
    """The sweep, or None when it does not exist or (with `owner`) belongs to someone else."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or (owner is not None and sweep.owner != owner):
        return None
    return sweep


def lock(session: Session, sweep_id: str) -> Sweep | None:
    """The sweep, its row locked until the caller's transaction ends (PostgreSQL: FOR UPDATE;
    SQLite's write session holds the database's write lock already), re-read from the database;
    None when it does not exist."""
    return session.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update()
                          .execution_options(populate_existing=True))


def page(session: Session, *, owner: str | None, before: tuple[dt.datetime, str] | None,
         limit: int) -> list[Sweep]:
    """Sweeps newest first; `before` is the (created_at, id) of the previous page's last one."""
    query = select(Sweep)
    if owner is not None:
        query = query.where(Sweep.owner == owner)
    if before is not None:
        created_at, sweep_id = before
        query = query.where(or_(Sweep.created_at < created_at,
                                and_(Sweep.created_at == created_at, Sweep.id < sweep_id)))
    return list(session.scalars(query.order_by(Sweep.created_at.desc(), Sweep.id.desc())
                                .limit(limit)))


def runs(session: Session, sweep_id: str) -> list[Job]:
    """The sweep's runs in creation order."""
    return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id)
                                .order_by(Job.created_at, Job.id)))


def status_counts(session: Session, sweep_ids: list[str]) -> dict[str, dict[str, int]]:
    """{sweep id: {status: number of its runs}} (statuses with no run are absent)."""
    counts: dict[str, dict[str, int]] = {sweep_id: {} for sweep_id in sweep_ids}
    rows = session.execute(select(Job.sweep_id, Job.status, func.count())
                           .where(Job.sweep_id.in_(sweep_ids))
                           .group_by(Job.sweep_id, Job.status))
    for sweep_id, status, n in rows:
        assert sweep_id is not None  # the WHERE keeps the sweeps' runs only
        counts[sweep_id][status] = int(n)
    return counts


def run_results(session: Session, sweep: Sweep) -> list[sweep_summary.RunResult]:
    """Every run of the sweep with its parameters, status, final metrics and gaps."""
    jobs = runs(session, sweep.id)
    best = best_values(session, [job.id for job in jobs], "test_accuracy")
    return [sweep_summary.run_result(job.id, sweep.run_parameters.get(job.id, {}), job.status,
                                     dict(job.latest_metrics or {}), best.get(job.id))
            for job in jobs]


def remove(session: Session, sweep_id: str) -> None:
    """Delete the sweep and its runs (with their metrics, checkpoints and models)."""
    session.execute(delete(Job).where(Job.sweep_id == sweep_id))
    session.execute(delete(Sweep).where(Sweep.id == sweep_id))


def best_values(session: Session, job_ids: list[str], key: str) -> dict[str, tuple[float, int]]:
    """{job id: (highest value of metric `key`, the earliest step it was reached at)}, read
    from the per-block rollups."""
    rows = session.execute(
        select(MetricSeries.job_id, MetricBlock.max_value, MetricBlock.max_step)
        .join(MetricBlock, MetricBlock.series_id == MetricSeries.id)
        .where(MetricSeries.job_id.in_(job_ids), MetricSeries.key == key))
    best: dict[str, tuple[float, int]] = {}
    for job_id, value, step in rows:
        seen = best.get(job_id)
        if seen is None or value > seen[0] or (value == seen[0] and step < seen[1]):
            best[job_id] = (float(value), int(step))
    return best
