"""The live view `dropnet submit --follow` draws: a progress bar with speed and ETA, and the
latest losses, accuracies, dropout rate and learning rate below it.

    digits-mlp running ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╺━━━━━━━━━  1500/2000  292 it/s  eta 0:02
      loss      batch 0.0006  train 0.0005  test 0.0832
      accuracy  train 1.0000  test 0.9755
      dropout   0.2           learning rate 0.1
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from .events import EndEvent, JobEvent, MetricsEvent, ProgressEvent, StatusEvent
from .models import Job

STATUS_STYLES = {"queued": "yellow", "running": "cyan", "succeeded": "green", "failed": "red",
                 "cancelled": "magenta"}
# The rows under the bar: a label, then (metric key, its short name) pairs.
ROWS = (("loss", (("batch_loss", "batch"), ("train_loss", "train"), ("test_loss", "test"))),
        ("accuracy", (("train_accuracy", "train"), ("test_accuracy", "test"))),
        ("dropout", (("dropout_rate", ""), ("learning_rate", "learning rate"))))


def number(value: float, key: str) -> str:
    """A metric value as people read it: accuracies to 4 decimals, others to 4 digits."""
    return f"{value:.4f}" if key.endswith("accuracy") else f"{value:.4g}"


def duration(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` past an hour."""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class FollowView:
    """What is known of a followed job, updated by its events; `render()` draws it."""

    def __init__(self, job: Job) -> None:
        self.name = job.name
        self.latest: dict[str, float] = dict(job.metrics)
        self.notes: list[str] = []
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=36),
                                  MofNCompleteColumn(), TextColumn("{task.fields[speed]}"))
        self._task = self._progress.add_task(self._describe(job.status),
                                             total=job.progress.total or None,
                                             completed=job.progress.iteration, speed="")

    def apply(self, event: JobEvent) -> None:
        if isinstance(event, StatusEvent):
            self._progress.update(self._task, description=self._describe(event.status))
            if event.status == "running" and event.attempts > 1:
                self.notes.append(f"attempt {event.attempts} resumes the job")
        elif isinstance(event, ProgressEvent):
            speed = (f"{event.iterations_per_second:,.0f} it/s"
                     if event.iterations_per_second else "")
            if event.eta_seconds is not None:
                speed += f"  eta {duration(event.eta_seconds)}"
            self._progress.update(self._task, completed=event.iteration, total=event.total,
                                  speed=speed)
        elif isinstance(event, MetricsEvent):
            self.latest |= event.latest()
        elif isinstance(event, EndEvent):
            self.latest |= event.metrics
            task = self._progress.tasks[0]
            done = task.total if event.status == "succeeded" and task.total else task.completed
            self._progress.update(self._task, description=self._describe(event.status),
                                  completed=done, speed="")

    def render(self) -> RenderableType:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        rows = [(label, [f"{name} {number(self.latest[key], key)}".strip()
                         for key, name in metrics if key in self.latest])
                for label, metrics in ROWS]
        for label, cells in rows:
            if cells:
                grid.add_row(f"  {label}", "  ".join(cells))
        if not grid.rows:
            grid.add_row("  waiting for the first metrics", "")
        return Group(self._progress, grid, *(Text(note, style="yellow") for note in self.notes))

    def _describe(self, status: str) -> str:
        """Rich markup of the job's name (escaped: it is user input) and status."""
        return f"[bold]{escape(self.name)}[/] [{STATUS_STYLES.get(status, 'default')}]{status}[/]"
