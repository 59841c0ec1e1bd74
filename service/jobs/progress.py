"""A job's progress figures derived from its row."""

from __future__ import annotations


def eta_seconds(total: int, iteration: int, iterations_per_second: float | None) -> float | None:
    """Seconds until `total` iterations at the current speed; None without a speed."""
    if not iterations_per_second:
        return None
    return (total - iteration) / iterations_per_second
