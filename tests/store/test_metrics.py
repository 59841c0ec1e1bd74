import math
import random

import pytest
from sqlalchemy import select

from service.store import metrics as metric_rows
from service.store.models import MetricBlock, MetricSeries
from tests.factories import add_queued_job


def make_series(db, key="batch_loss"):
    with db.write() as session:
        job = add_queued_job(session)
        return job.id, metric_rows.series_ids(session, job.id, [key])[key]


def insert(db, series, steps, value=lambda s: math.sin(s / 50.0) + (s % 7) * 0.01):
    values = {s: value(s) for s in steps}
    rows = [(series, s, v, 1000.0 + s) for s, v in values.items()]
    with db.write() as session:
        for start in range(0, len(rows), 5000):
            metric_rows.insert_points(session, rows[start:start + 5000])
    return values


def blocks(db, series):
    with db.read() as session:
        return [(b.block, b.n, b.first_step, b.last_step, b.min_step, b.max_step)
                for b in session.scalars(select(MetricBlock).where(
                    MetricBlock.series_id == series).order_by(MetricBlock.block))]


def test_series_ids_are_created_once(db):
    with db.write() as session:
        job = add_queued_job(session)
        a = metric_rows.series_ids(session, job.id, ["x", "y"])
        b = metric_rows.series_ids(session, job.id, ["y", "z"])
    assert a["y"] == b["y"] and len({a["x"], a["y"], b["z"]}) == 3


def test_pages_in_step_order_with_bounds(db):
    _, series = make_series(db)
    values = insert(db, series, range(1, 101))
    with db.read() as session:
        page = metric_rows.page(session, series, start_step=10, end_step=50, after_step=None,
                                limit=15)
        assert [p.step for p in page] == list(range(10, 25))
        after = metric_rows.page(session, series, start_step=10, end_step=50,
                                 after_step=page[-1].step, limit=100)
        assert [p.step for p in after] == list(range(25, 51))
        assert after[0].value == values[25] and after[0].timestamp == 1025.0


def test_summaries(db):
    job_id, series = make_series(db)
    with db.write() as session:
        other = metric_rows.series_ids(session, job_id, ["test_accuracy"])["test_accuracy"]
        metric_rows.insert_points(session, [(other, 20, 0.5, 1.0), (other, 40, 0.75, 2.0)])
    insert(db, series, range(1, 301))
    with db.read() as session:
        summary = {s.key: s for s in metric_rows.summaries(session, job_id)}
    assert summary["batch_loss"].count == 300
    assert (summary["batch_loss"].first_step, summary["batch_loss"].last_step) == (1, 300)
    assert summary["test_accuracy"] == metric_rows.SeriesSummary("test_accuracy", 2, 20, 40, 0.75)


def reference_buckets(values, first, last, buckets):
    span = last - first + 1
    groups = {}
    for step in range(first, last + 1):
        if step in values:
            groups.setdefault((step - first) * buckets // span, []).append(step)
    chosen = {first, last}
    for steps in groups.values():
        chosen.add(min(steps, key=lambda s: (values[s], s)))
        chosen.add(min(steps, key=lambda s: (-values[s], s)))
    return sorted(s for s in chosen if s in values)


def test_downsample_short_ranges_keeps_each_buckets_min_and_max(db):
    _, series = make_series(db)
    rng = random.Random(0)
    values = insert(db, series, range(1, 5001), value=lambda s: rng.random())
    with db.read() as session:
        points = metric_rows.downsample(session, series, start_step=100, end_step=4000,
                                        max_points=102)
    assert [p.step for p in points] == reference_buckets(values, 100, 4000, 50)
    assert all(p.value == values[p.step] for p in points)


def test_downsample_of_a_range_within_max_points_is_every_point(db):
    _, series = make_series(db)
    insert(db, series, range(1, 601), value=lambda s: 0.1)  # constant: min == max everywhere
    with db.read() as session:
        points = metric_rows.downsample(session, series, start_step=None, end_step=None,
                                        max_points=600)
        shorter = metric_rows.downsample(session, series, start_step=None, end_step=None,
                                         max_points=599)
    assert [p.step for p in points] == list(range(1, 601))
    assert len(shorter) < 600 and (shorter[0].step, shorter[-1].step) == (1, 600)


def test_downsample_long_ranges_from_blocks_keeps_extremes(db):
    _, series = make_series(db)
    rng = random.Random(1)
    n = 60_000
    values = insert(db, series, range(1, n + 1), value=lambda s: rng.random())
    lo, hi = 37, n - 11
    with db.read() as session:
        points = metric_rows.downsample(session, series, start_step=lo, end_step=hi,
                                        max_points=200)
    steps = [p.step for p in points]
    assert len(points) <= 200
    assert steps == sorted(set(steps))
    assert steps[0] == lo and steps[-1] == hi
    in_range = {s: v for s, v in values.items() if lo <= s <= hi}
    assert min(in_range, key=in_range.get) in steps
    assert max(in_range, key=in_range.get) in steps
    # Every bucket of whole blocks contributes its own minimum and maximum.
    block = metric_rows.BLOCK
    first_block, last_block = -(-lo // block), (hi + 1) // block - 1
    per_bucket = -(-(last_block - first_block + 1) // 99)
    for start in range(first_block, last_block + 1, per_bucket):
        bucket = range(start * block, min(start + per_bucket, last_block + 1) * block)
        assert min(bucket, key=lambda s: (values[s], s)) in steps
        assert min(bucket, key=lambda s: (-values[s], s)) in steps


def test_deleting_a_tail_rebuilds_the_blocks_exactly(db):
    _, series = make_series(db)
    insert(db, series, range(1, 1001))
    expected = blocks(db, series)
    with db.read() as session:
        job_id = session.get(MetricSeries, series).job_id
    with db.write() as session:
        metric_rows.delete_after(session, job_id, 500)
    assert sum(b[1] for b in blocks(db, series)) == 500
    insert(db, series, range(501, 1001))
    assert blocks(db, series) == expected


def test_a_step_is_stored_once(db):
    from sqlalchemy.exc import IntegrityError

    _, series = make_series(db)
    insert(db, series, [1, 2])
    with pytest.raises(IntegrityError), db.write() as session:
        metric_rows.insert_points(session, [(series, 2, 0.0, 0.0)])
