"""The Python client of dropnet: typed httpx `Client` and `AsyncClient`, one `DropnetError`.

It imports nothing of the server (an import-linter contract checks it): it talks HTTP.
"""

from .client import DEFAULT_URL, AsyncClient, Client
from .errors import DropnetError
from .events import (
    EndEvent,
    JobEvent,
    MetricsEvent,
    ProgressEvent,
    RunEvent,
    StatusEvent,
    SweepEndEvent,
    SweepEvent,
)
from .models import (
    Attempt,
    Dataset,
    Health,
    Job,
    JobPage,
    MetricKey,
    MetricPoint,
    MetricSeries,
    Prediction,
    Sweep,
    SweepPage,
    SweepRun,
)

__all__ = [
    "DEFAULT_URL", "AsyncClient", "Attempt", "Client", "Dataset", "DropnetError", "EndEvent",
    "Health", "Job", "JobEvent", "JobPage", "MetricKey", "MetricPoint", "MetricSeries",
    "MetricsEvent", "Prediction", "ProgressEvent", "RunEvent", "StatusEvent", "Sweep",
    "SweepEndEvent", "SweepEvent", "SweepPage", "SweepRun",
]
