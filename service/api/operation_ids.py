"""Stable OpenAPI operationIds: `<tag>-<action>`, e.g. `jobs-submit`, `sweeps-runs-csv`.

FastAPI's default (`submit_job_v1_jobs_post`) changes with the path and reads badly in
generated clients. Here the action is the route function's name without the words that
repeat its tag: `submit_job` tagged `jobs` is `jobs-submit`, `metric_history` tagged
`metrics` is `metrics-history`. A tag of several words is written in lower case with
hyphens: `inference protocol (v2)` is `inference-protocol-v2`.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute


def operation_id(route: APIRoute) -> str:
    """`<tag>-<action>` for a route with one tag; refuses a route without exactly one, unless
    it is left out of the schema (FastAPI asks for the ids of those too: their name then)."""
    if not route.include_in_schema:
        return route.name
    if len(route.tags) != 1:
        raise ValueError(f"route {route.name} ({route.path}) needs exactly one tag to name its "
                         f"operation; it has {route.tags!r}")
    tag = re.sub(r"[^a-z0-9]+", "-", str(route.tags[0]).lower()).strip("-")
    repeats = {tag, tag.removesuffix("s")}
    action = [word for word in route.name.split("_") if word not in repeats]
    return "-".join([tag, *(action or [route.name])])
