"""Metric history: series per (job, key), points per (series, step), and block rollups.

Points are written in batches. Beside them, `metric_blocks` keeps, for every run of BLOCK
consecutive steps, the count and the (step, value) of its minimum and maximum, merged on every
write. Downsampling a long range therefore groups a few thousand block rows instead of sorting
every point; only the partial blocks at the range's edges are read point by point.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, and_, delete, func, select, tuple_
from sqlalchemy.orm import Session

from .models import MetricBlock, MetricPoint, MetricSeries
from .upsert import upsert

BLOCK = 128
"""Steps per rollup block."""

RAW_DOWNSAMPLE_LIMIT = 20_000
"""Ranges spanning at most this many steps are downsampled from the points directly."""


@dataclass(frozen=True)
class SeriesSummary:
    key: str
    count: int
    first_step: int | None
    last_step: int | None
    last_value: float | None


@dataclass(frozen=True)
class Point:
    step: int
    value: float
    timestamp: float


def series_ids(session: Session, job_id: str, keys: Iterable[str]) -> dict[str, int]:
    """{key: series id} for `keys` of the job, creating the series that do not exist yet."""
    keys = sorted(set(keys))
    upsert(session, MetricSeries, [{"job_id": job_id, "key": key} for key in keys],
           conflict=("job_id", "key"))
    rows = session.execute(select(MetricSeries.key, MetricSeries.id).where(
        MetricSeries.job_id == job_id, MetricSeries.key.in_(keys)))
    return {key: series_id for key, series_id in rows}


def insert_points(session: Session, rows: Sequence[tuple[int, int, float, float]]) -> None:
    """Insert (series_id, step, value, timestamp) rows and merge them into their blocks.

    A step already stored for a series is an error (primary key): callers delete first.
    """
    if not rows:
        return
    # Straight to the driver's executemany, POINTS_PER_STATEMENT rows per statement:
    # SQLAlchemy's per-row work would cost more than SQLite's, and a worker writes every
    # iteration's metrics.
    connection = session.connection()
    whole = len(rows) - len(rows) % POINTS_PER_STATEMENT
    if whole:
        connection.exec_driver_sql(
            _sql(connection, _INSERT_POINTS, POINTS_PER_STATEMENT),
            [tuple(itertools.chain.from_iterable(rows[start:start + POINTS_PER_STATEMENT]))
             for start in range(0, whole, POINTS_PER_STATEMENT)])
    if whole < len(rows):
        connection.exec_driver_sql(_sql(connection, _INSERT_POINTS, 1),
                                   [tuple(row) for row in rows[whole:]])
    _merge_blocks(session, _block_summaries(rows))


POINTS_PER_STATEMENT = 100

_INSERT_POINTS = "INSERT INTO metric_points (series_id, step, value, recorded_at) VALUES {rows}"

# Each block's row keeps the lowest first_step, the highest last_step, and the (step, value)
# of the minimum and maximum, ties going to the earliest step. SET expressions read the row
# as it was before the update.
_MERGE_BLOCKS = """INSERT INTO metric_blocks
    (series_id, block, n, first_step, last_step, min_step, min_value, max_step, max_value)
VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})
ON CONFLICT (series_id, block) DO UPDATE SET
    n = metric_blocks.n + excluded.n,
    first_step = CASE WHEN excluded.first_step < metric_blocks.first_step
                      THEN excluded.first_step ELSE metric_blocks.first_step END,
    last_step = CASE WHEN excluded.last_step > metric_blocks.last_step
                     THEN excluded.last_step ELSE metric_blocks.last_step END,
    min_step = CASE WHEN excluded.min_value < metric_blocks.min_value
                         OR (excluded.min_value = metric_blocks.min_value
                             AND excluded.min_step < metric_blocks.min_step)
                    THEN excluded.min_step ELSE metric_blocks.min_step END,
    min_value = CASE WHEN excluded.min_value < metric_blocks.min_value
                     THEN excluded.min_value ELSE metric_blocks.min_value END,
    max_step = CASE WHEN excluded.max_value > metric_blocks.max_value
                         OR (excluded.max_value = metric_blocks.max_value
                             AND excluded.max_step < metric_blocks.max_step)
                    THEN excluded.max_step ELSE metric_blocks.max_step END,
    max_value = CASE WHEN excluded.max_value > metric_blocks.max_value
                     THEN excluded.max_value ELSE metric_blocks.max_value END"""


def _sql(connection: Connection, template: str, rows: int = 1) -> str:
    """`template` with the driver's positional placeholder (sqlite3: ?, psycopg: %s), and
    {rows} as that many tuples of four."""
    p = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    return template.format(p=p, rows=", ".join([f"({p}, {p}, {p}, {p})"] * rows))


def _block_summaries(rows: Sequence[tuple[int, int, float, float]]
                     ) -> list[tuple[int, int, int, int, int, int, float, int, float]]:
    """(series_id, block, n, first_step, last_step, min_step, min_value, max_step, max_value)
    for each block the rows touch; ties between equal values go to the earliest step."""
    columns = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64,
                          count=4 * len(rows)).reshape(-1, 4)
    series, steps = columns[:, 0].astype(np.int64), columns[:, 1].astype(np.int64)
    blocks = steps // BLOCK
    order = np.argsort(series << 32 | blocks, kind="stable")
    series, blocks, steps, values = series[order], blocks[order], steps[order], columns[order, 2]
    starts = np.flatnonzero(np.concatenate((
        [True], (series[1:] != series[:-1]) | (blocks[1:] != blocks[:-1]))))
    counts = np.diff(np.append(starts, len(steps)))
    low, high = np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)

    def earliest(where: np.ndarray) -> np.ndarray:
        return np.minimum.reduceat(np.where(where, steps, np.iinfo(np.int64).max), starts)

    return list(zip(
        series[starts].tolist(), blocks[starts].tolist(), counts.tolist(),
        np.minimum.reduceat(steps, starts).tolist(), np.maximum.reduceat(steps, starts).tolist(),
        earliest(values == np.repeat(low, counts)).tolist(), low.tolist(),
        earliest(values == np.repeat(high, counts)).tolist(), high.tolist(),
        strict=True))


def _merge_blocks(session: Session,
                  summaries: list[tuple[int, int, int, int, int, int, float, int, float]]) -> None:
    if not summaries:
        return
    connection = session.connection()
    connection.exec_driver_sql(_sql(connection, _MERGE_BLOCKS), summaries)


def delete_after(session: Session, job_id: str, step: int) -> None:
    """Delete the job's points after `step` (a crashed attempt's tail) and fix the blocks."""
    ids = list(session.scalars(select(MetricSeries.id).where(MetricSeries.job_id == job_id)))
    if not ids:
        return
    session.execute(delete(MetricPoint).where(MetricPoint.series_id.in_(ids),
                                              MetricPoint.step > step))
    first_dirty = step // BLOCK
    session.execute(delete(MetricBlock).where(MetricBlock.series_id.in_(ids),
                                              MetricBlock.block >= first_dirty))
    kept = session.execute(
        select(MetricPoint.series_id, MetricPoint.step, MetricPoint.value,
               MetricPoint.recorded_at)
        .where(MetricPoint.series_id.in_(ids), MetricPoint.step >= first_dirty * BLOCK)
    ).all()
    if kept:
        rows = [(series, point_step, value, recorded)
                for series, point_step, value, recorded in kept]
        _merge_blocks(session, _block_summaries(rows))


def summaries(session: Session, job_id: str) -> list[SeriesSummary]:
    """Each metric key of the job with its count, first/last step and last value."""
    stats = session.execute(
        select(MetricSeries.id, MetricSeries.key, func.sum(MetricBlock.n),
               func.min(MetricBlock.first_step), func.max(MetricBlock.last_step))
        .join(MetricBlock, MetricBlock.series_id == MetricSeries.id, isouter=True)
        .where(MetricSeries.job_id == job_id)
        .group_by(MetricSeries.id, MetricSeries.key)
        .order_by(MetricSeries.key)
    ).all()
    last_values = dict(session.execute(
        select(MetricPoint.series_id, MetricPoint.value).where(
            tuple_(MetricPoint.series_id, MetricPoint.step).in_(
                [(sid, last) for sid, _, _, _, last in stats if last is not None]))
    ).all()) if any(row[4] is not None for row in stats) else {}
    return [SeriesSummary(key, int(n or 0), first, last, last_values.get(sid))
            for sid, key, n, first, last in stats]


@dataclass(frozen=True)
class KeyedPoint:
    key: str
    step: int
    value: float
    timestamp: float


def points_after(session: Session, job_id: str, step: int, *, limit: int
                 ) -> tuple[list[KeyedPoint], bool]:
    """The job's points of every key after `step`, in (step, key) order, whole steps only:
    at most `limit` points, unless one step alone has more. Returns (points, complete), where
    complete is False when more points follow."""
    rows = session.execute(
        select(MetricSeries.key, MetricPoint.step, MetricPoint.value, MetricPoint.recorded_at)
        .join(MetricSeries, MetricSeries.id == MetricPoint.series_id)
        .where(MetricSeries.job_id == job_id, MetricPoint.step > step)
        .order_by(MetricPoint.step, MetricSeries.key)
        .limit(limit + 1)).all()
    points = [KeyedPoint(*row) for row in rows]
    if len(points) <= limit:
        return points, True
    last = points[limit].step  # the step the limit cut: left for the next call
    whole = [point for point in points if point.step < last]
    return (whole, False) if whole else (
        points_at(session, job_id, last), False)


def points_at(session: Session, job_id: str, step: int) -> list[KeyedPoint]:
    """The job's points of every key at `step`, in key order."""
    rows = session.execute(
        select(MetricSeries.key, MetricPoint.step, MetricPoint.value, MetricPoint.recorded_at)
        .join(MetricSeries, MetricSeries.id == MetricPoint.series_id)
        .where(MetricSeries.job_id == job_id, MetricPoint.step == step)
        .order_by(MetricSeries.key))
    return [KeyedPoint(*row) for row in rows]


def last_step(session: Session, job_id: str) -> int:
    """The job's highest stored step of any key (0 without points), from the block rollups."""
    return int(session.scalar(
        select(func.coalesce(func.max(MetricBlock.last_step), 0))
        .join(MetricSeries, MetricSeries.id == MetricBlock.series_id)
        .where(MetricSeries.job_id == job_id)) or 0)


def series_id(session: Session, job_id: str, key: str) -> int | None:
    return session.scalar(select(MetricSeries.id).where(MetricSeries.job_id == job_id,
                                                         MetricSeries.key == key))


def page(session: Session, series: int, *, start_step: int | None, end_step: int | None,
         after_step: int | None, limit: int) -> list[Point]:
    """Up to `limit` points in step order, within [start_step, end_step], after `after_step`."""
    query = select(MetricPoint.step, MetricPoint.value, MetricPoint.recorded_at).where(
        MetricPoint.series_id == series)
    if start_step is not None:
        query = query.where(MetricPoint.step >= start_step)
    if after_step is not None:
        query = query.where(MetricPoint.step > after_step)
    if end_step is not None:
        query = query.where(MetricPoint.step <= end_step)
    rows = session.execute(query.order_by(MetricPoint.step).limit(limit))
    return [Point(step, value, ts) for step, value, ts in rows]


def downsample(session: Session, series: int, *, start_step: int | None, end_step: int | None,
               max_points: int) -> list[Point]:
    """At most `max_points` points of the range, in step order: every point when the range
    spans no more than `max_points` steps, else the first, the last, and the minimum and
    maximum of each of (max_points - 2) // 2 equal step buckets."""
    in_bounds = select(MetricPoint.step).where(MetricPoint.series_id == series)
    if start_step is not None:
        in_bounds = in_bounds.where(MetricPoint.step >= start_step)
    if end_step is not None:
        in_bounds = in_bounds.where(MetricPoint.step <= end_step)
    # Two index probes: SQLite answers min() and max() in one query by scanning the range.
    first, last = session.execute(select(
        in_bounds.order_by(MetricPoint.step).limit(1).scalar_subquery(),
        in_bounds.order_by(MetricPoint.step.desc()).limit(1).scalar_subquery())).one()
    if first is None:
        return []
    span = last - first + 1
    if span <= max_points:  # steps are unique: the range holds at most `span` points
        return page(session, series, start_step=first, end_step=last, after_step=None,
                    limit=span)
    buckets = max(1, (max_points - 2) // 2)
    if span <= RAW_DOWNSAMPLE_LIMIT:
        steps = _extremes_from_points(session, series, first, last, buckets)
    else:
        steps = _extremes_from_blocks(session, series, first, last, buckets)
    steps |= {first, last}
    rows = session.execute(
        select(MetricPoint.step, MetricPoint.value, MetricPoint.recorded_at)
        .where(MetricPoint.series_id == series, MetricPoint.step.in_(sorted(steps)))
        .order_by(MetricPoint.step))
    points = [Point(step, value, ts) for step, value, ts in rows]
    return points if len(points) <= max_points else points[:max_points - 1] + points[-1:]


def _extremes_from_points(session: Session, series: int, first: int, last: int,
                          buckets: int) -> set[int]:
    """Steps of each bucket's min and max, grouping the points themselves."""
    span = last - first + 1
    bucket = ((MetricPoint.step - first) * buckets // span).label("bucket")
    in_range = and_(MetricPoint.series_id == series, MetricPoint.step.between(first, last))
    steps: set[int] = set()
    for order in (MetricPoint.value.asc(), MetricPoint.value.desc()):
        ranked = select(
            MetricPoint.step,
            func.row_number().over(partition_by=bucket, order_by=(order, MetricPoint.step))
            .label("rank"),
        ).where(in_range).subquery()
        steps.update(session.scalars(select(ranked.c.step).where(ranked.c.rank == 1)))
    return steps


def _extremes_from_blocks(session: Session, series: int, first: int, last: int,
                          buckets: int) -> set[int]:
    """Steps of each bucket's min and max, from the block rollups. Buckets are whole blocks;
    the partial blocks at either end are read point by point."""
    first_block, last_block = -(-first // BLOCK), (last + 1) // BLOCK - 1  # whole blocks only
    steps: set[int] = set()
    if first_block <= last_block:
        blocks_per_bucket = -(-(last_block - first_block + 1) // buckets)
        bucket = ((MetricBlock.block - first_block) // blocks_per_bucket).label("bucket")
        in_range = and_(MetricBlock.series_id == series,
                        MetricBlock.block.between(first_block, last_block))
        for step, order in ((MetricBlock.min_step, MetricBlock.min_value.asc()),
                            (MetricBlock.max_step, MetricBlock.max_value.desc())):
            ranked = select(
                step.label("step"),
                func.row_number().over(partition_by=bucket, order_by=(order, step))
                .label("rank"),
            ).where(in_range).subquery()
            steps.update(session.scalars(select(ranked.c.step).where(ranked.c.rank == 1)))
    for edge_first, edge_last in ((first, first_block * BLOCK - 1),
                                  ((last_block + 1) * BLOCK, last)):
        if edge_first <= edge_last:
            steps |= _extremes_from_points(session, series, edge_first, edge_last, 1)
    return steps
