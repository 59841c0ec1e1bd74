"""The client commands of `dropnet`: submit (and follow), jobs, logs, predict.

They talk to a running service over HTTP (`--url`, `--api-key`, or DROPNET_URL and
DROPNET_API_KEY). Exit status: 0 done (a followed job succeeded), 1 the followed job failed,
3 it was cancelled, 2 the request was refused or the server unreachable (the message says
why), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from .client import DEFAULT_URL, Client
from .errors import DropnetError
from .events import EndEvent, MetricsEvent, ProgressEvent, StatusEvent
from .models import Job

EXIT_FAILED, EXIT_REFUSED, EXIT_CANCELLED, EXIT_INTERRUPTED = 1, 2, 3, 130
STATUS_STYLES = {"queued": "yellow", "running": "cyan", "succeeded": "green", "failed": "red",
                 "cancelled": "magenta"}
# What the progress line shows of the latest metrics, in this order, with short labels.
SHOWN_METRICS = (("batch_loss", "batch loss"), ("train_loss", "train loss"),
                 ("test_loss", "test loss"), ("train_accuracy", "train acc"),
                 ("test_accuracy", "test acc"), ("dropout_rate", "dropout"),
                 ("learning_rate", "lr"))

Command = Callable[[argparse.Namespace, Client, Console], int]


class CommandError(Exception):
    """A mistake in the command's own input (a file that cannot be read), exit status 2."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add submit, jobs, logs and predict to the `dropnet` parser."""
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--url", default=os.environ.get("DROPNET_URL", DEFAULT_URL),
                            help=f"the service (env DROPNET_URL, default {DEFAULT_URL})")
    connection.add_argument("--api-key", dest="api_key",
                            default=os.environ.get("DROPNET_API_KEY"),
                            help="bearer key (env DROPNET_API_KEY)")

    p = commands.add_parser("submit", parents=[connection], help="submit a job spec (JSON)")
    p.add_argument("spec", type=Path, help="a job spec as JSON ('-': standard input)")
    p.add_argument("--follow", action="store_true",
                   help="show its progress and latest metrics until it ends")
    p.set_defaults(func=_runner(submit))

    p = commands.add_parser("jobs", parents=[connection], help="list jobs, newest first")
    p.add_argument("--status", choices=tuple(STATUS_STYLES))
    p.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    p.set_defaults(func=_runner(jobs))

    p = commands.add_parser("logs", parents=[connection], help="a job's metrics as a table")
    p.add_argument("job_id")
    p.add_argument("--key", help="one metric's history instead of the summary of all")
    p.add_argument("--max-points", dest="max_points", type=int, default=20,
                   help="points of --key's history, downsampled (default 20)")
    p.set_defaults(func=_runner(logs))

    p = commands.add_parser("predict", parents=[connection],
                            help="predict the rows of a .npy or .csv file")
    p.add_argument("job_id")
    p.add_argument("inputs", type=Path, help=".npy (rows shaped like the model's input) or "
                                             ".csv (one flat row per line, header optional)")
    p.add_argument("--mc-samples", dest="mc_samples", type=int, default=0,
                   help="Monte-Carlo dropout forwards (0: deterministic)")
    p.add_argument("--seed", type=int, default=0, help="seed of the MC-dropout masks")
    p.set_defaults(func=_runner(predict))


def _runner(command: Command) -> Callable[[argparse.Namespace], None]:
    """The command with a client, a console, and errors turned into messages and exits."""

    def run(args: argparse.Namespace) -> None:
        console = Console(highlight=False)
        errors = Console(stderr=True, highlight=False)
        try:
            with Client(args.url, api_key=args.api_key) as client:
                status = command(args, client, console)
        except (DropnetError, CommandError) as error:
            errors.print(Text.assemble(("error", "bold red"), f": {error}"))
            status = EXIT_REFUSED
        except KeyboardInterrupt:
            status = EXIT_INTERRUPTED
        sys.exit(status)

    return run


# -- submit ---------------------------------------------------------------------------------

def submit(args: argparse.Namespace, client: Client, console: Console) -> int:
    job = client.submit(_read_spec(args.spec))
    print(job.id, flush=True)
    if not args.follow:
        return 0
    try:
        return follow(client, job, Console(stderr=True, highlight=False), console)
    except KeyboardInterrupt:
        console.print(f"stopped following; job {job.id} goes on "
                      f"(dropnet logs {job.id}, or cancel it through the API)")
        return EXIT_INTERRUPTED


def _read_spec(path: Path) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as error:
        raise CommandError(f"cannot read the spec {path}: {error.strerror}") from error
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{path} is not JSON: {error}") from error
    if not isinstance(spec, dict):
        raise CommandError(f"{path} must hold a JSON object (a job spec); "
                           f"it holds a {type(spec).__name__}")
    return spec


def follow(client: Client, job: Job, live_console: Console, console: Console) -> int:
    """Show the job's progress bar and latest metrics until its end event; the exit status."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30),
                        MofNCompleteColumn(), TextColumn("{task.fields[speed]}"),
                        console=live_console)
    task = progress.add_task(_describe(job.name, job.status), total=job.progress.total or None,
                             speed="")
    latest: dict[str, float] = dict(job.metrics)
    started = time.monotonic()
    with Live(Group(progress, _metrics_line(latest)), console=live_console,
              refresh_per_second=8, transient=False) as live:
        for event in client.follow(job.id):
            if isinstance(event, StatusEvent):
                progress.update(task, description=_describe(job.name, event.status))
                if event.status == "running" and event.attempts > 1:
                    live.console.print(f"attempt {event.attempts} resumes the job")
            elif isinstance(event, ProgressEvent):
                _advance(progress, task, event)
            elif isinstance(event, MetricsEvent):
                latest |= event.latest()
            elif isinstance(event, EndEvent):
                latest |= event.metrics
                progress.update(task, description=_describe(job.name, event.status))
                live.update(Group(progress, _metrics_line(latest)), refresh=True)
                return _report_end(console, job, event, time.monotonic() - started)
            live.update(Group(progress, _metrics_line(latest)))
    raise DropnetError(None, "stream_ended", f"the events of job {job.id} ended without an "
                       "end event")


def _describe(name: str, status: str) -> str:
    """Rich markup of the job's name (escaped: it is user input) and status."""
    return f"[bold]{escape(name)}[/] [{STATUS_STYLES.get(status, 'default')}]{status}[/]"


def _advance(progress: Progress, task: TaskID, event: ProgressEvent) -> None:
    speed = (f"{event.iterations_per_second:,.0f} it/s" if event.iterations_per_second
             else "")
    if event.eta_seconds is not None:
        speed += f"  eta {_duration(event.eta_seconds)}"
    progress.update(task, completed=event.iteration, total=event.total, speed=speed)


def _metrics_line(latest: dict[str, float]) -> Text:
    parts = [f"{label} {_number(latest[key], key)}" for key, label in SHOWN_METRICS
             if key in latest]
    return Text("  ".join(parts) if parts else "waiting for the first metrics", style="dim")


def _report_end(console: Console, job: Job, end: EndEvent, seconds: float) -> int:
    style = STATUS_STYLES.get(end.status, "")
    console.print(Text.assemble(("job ", ""), (job.id, "bold"), " ", (end.status, style),
                                f" after {_duration(seconds)}"
                                + (f" ({end.attempts} attempts)" if end.attempts > 1 else "")))
    if end.error:
        console.print(Text(end.error, style="red"))
    if end.metrics:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        for key in sorted(end.metrics):
            table.add_row(key, _number(end.metrics[key], key))
        console.print(table)
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(end.status, EXIT_FAILED)


# -- jobs, logs -----------------------------------------------------------------------------

def jobs(args: argparse.Namespace, client: Client, console: Console) -> int:
    page = client.jobs(status=args.status, limit=args.limit)
    if not page.data:
        console.print("no jobs" + (f" {args.status}" if args.status else ""))
        return 0
    table = Table("id", "name", "status", "progress", "test acc", "created",
                  header_style="bold", box=None, padding=(0, 2, 0, 0))
    for job in page.data:
        done = job.progress.iteration / job.progress.total if job.progress.total else 0.0
        accuracy = job.metrics.get("test_accuracy")
        table.add_row(job.id, job.name, Text(job.status, STATUS_STYLES.get(job.status, "")),
                      f"{job.progress.iteration}/{job.progress.total} ({done:.0%})",
                      "" if accuracy is None else f"{accuracy:.3f}",
                      job.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)
    if page.next_cursor:
        console.print(f"(the newest {len(page.data)}; --limit shows more)", style="dim")
    return 0


def logs(args: argparse.Namespace, client: Client, console: Console) -> int:
    job = client.get(args.job_id)
    console.print(Text.assemble((job.name, "bold"), " ", (job.id, "dim"), " ",
                                (job.status, STATUS_STYLES.get(job.status, "")),
                                f"  iteration {job.progress.iteration}/{job.progress.total}"))
    if job.error:
        console.print(Text(job.error, style="red"))
    if args.key:
        series = client.history(job.id, args.key, max_points=args.max_points)
        table = Table("step", "value", header_style="bold", box=None, padding=(0, 2, 0, 0))
        for point in series.points:
            table.add_row(str(point.step), _number(point.value, args.key))
        console.print(table)
        return 0
    keys = client.metrics(job.id)
    if not keys:
        console.print("no metrics yet")
        return 0
    table = Table("metric", "points", "first step", "last step", "last value",
                  header_style="bold", box=None, padding=(0, 2, 0, 0))
    for key in keys:
        table.add_row(key.key, str(key.count), str(key.first_step), str(key.last_step),
                      "" if key.last_value is None else _number(key.last_value, key.key))
    console.print(table)
    return 0


# -- predict --------------------------------------------------------------------------------

def predict(args: argparse.Namespace, client: Client, console: Console) -> int:
    rows = _read_inputs(args.inputs)
    shape = client.get(args.job_id).spec.get("model", {}).get("input_shape")
    if shape and len(shape) > 1 and rows.ndim == 2 and rows.shape[1] == math.prod(shape):
        rows = rows.reshape(len(rows), *shape)  # a CSV's flat rows of an image model
    answer = client.predict(args.job_id, rows, mc_samples=args.mc_samples, seed=args.seed)
    table = Table("row", "class", "probability", header_style="bold", box=None,
                  padding=(0, 2, 0, 0))
    entropy, information = answer.entropy, answer.mutual_information
    if entropy is not None and information is not None:
        table.add_column("entropy")
        table.add_column("mutual info")
    table.add_column("class probabilities")
    for row, (label, probabilities) in enumerate(zip(answer.predictions, answer.probabilities,
                                                     strict=True)):
        cells = [str(row), str(label), f"{probabilities[label]:.3f}"]
        if entropy is not None and information is not None:
            cells += [f"{entropy[row]:.3f}", f"{information[row]:.3f}"]
        cells.append(" ".join(f"{p:.2f}" for p in probabilities))
        table.add_row(*cells)
    console.print(table)
    return 0


def _read_inputs(path: Path) -> np.ndarray:
    """Rows from a .npy file (any shape, first axis: rows) or a CSV (a header row is
    skipped when its cells are not numbers)."""
    try:
        if path.suffix == ".npy":
            rows = np.load(path, allow_pickle=False)
        elif path.suffix == ".csv":
            with path.open() as handle:
                first = handle.readline().split(",")
            header = any(not _is_number(cell) for cell in first)
            rows = np.loadtxt(path, delimiter=",", skiprows=int(header), ndmin=2)
        else:
            raise CommandError(f"{path}: expected a .npy or .csv file, received "
                               f"{path.suffix or 'no suffix'}")
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise CommandError(f"{path} does not hold rows of numbers: {error}") from error
    if rows.ndim < 2 or not np.issubdtype(rows.dtype, np.number):
        raise CommandError(f"{path}: expected rows of numbers (2 or more dimensions), "
                           f"received an array of shape {rows.shape} and dtype {rows.dtype}")
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# -- formatting -----------------------------------------------------------------------------

def _number(value: float, key: str) -> str:
    if key.endswith("accuracy"):
        return f"{value:.4f}"
    return f"{value:.4g}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
