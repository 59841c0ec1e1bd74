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
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .client import DEFAULT_URL, Client
from .errors import DropnetError
from .events import EndEvent
from .follow_view import STATUS_STYLES, FollowView, duration, number
from .models import Job

EXIT_FAILED, EXIT_REFUSED, EXIT_CANCELLED, EXIT_INTERRUPTED = 1, 2, 3, 130

FINALS = (("test_accuracy", "test acc"), ("test_loss", "test loss"))

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
        # Piped output is not cut to 80 columns; messages are never wrapped.
        console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
        errors = Console(stderr=True, highlight=False, soft_wrap=True)
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
    """Draw the job's progress and latest metrics until its end event; the exit status."""
    view = FollowView(job)
    started = time.monotonic()
    end: EndEvent | None = None
    with Live(view.render(), console=live_console, refresh_per_second=8) as live:
        for event in client.follow(job.id):
            view.apply(event)
            live.update(view.render())
            if isinstance(event, EndEvent):
                end = event
    if end is None:
        raise DropnetError(None, "stream_ended", f"the events of job {job.id} ended without "
                           "an end event")
    return _report_end(console, job, end, time.monotonic() - started)


def _report_end(console: Console, job: Job, end: EndEvent, seconds: float) -> int:
    """One line: how the job ended, after how long, with its final accuracies and loss."""
    attempts = f" ({end.attempts} attempts)" if end.attempts > 1 else ""
    finals = "".join(f"  {name} {number(end.metrics[key], key)}" for key, name in FINALS
                     if key in end.metrics)
    console.print(Text.assemble("job ", (job.id, "bold"), " ",
                                (end.status, STATUS_STYLES.get(end.status, "")),
                                f" after {duration(seconds)}{attempts}{finals}"))
    if end.error:
        console.print(Text(end.error, style="red"))
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(end.status, EXIT_FAILED)


# -- jobs, logs -----------------------------------------------------------------------------

def jobs(args: argparse.Namespace, client: Client, console: Console) -> int:
    page = client.jobs(status=args.status, limit=args.limit)
    if not page.data:
        console.print("no jobs" + (f" {args.status}" if args.status else ""))
        return 0
    table = Table(header_style="bold", box=None, padding=(0, 2, 0, 0))
    # Ids whole (they are copied into the next command); a long name gives way first.
    table.add_column("id", no_wrap=True, min_width=len(page.data[0].id))
    table.add_column("name", overflow="ellipsis", no_wrap=True)
    for heading in ("status", "progress", "test acc", "created"):
        table.add_column(heading, no_wrap=True)
    for job in page.data:
        done = job.progress.iteration / job.progress.total if job.progress.total else 0.0
        accuracy = job.metrics.get("test_accuracy")
        table.add_row(job.id, job.name, Text(job.status, STATUS_STYLES.get(job.status, "")),
                      f"{job.progress.iteration}/{job.progress.total} {done:4.0%}",
                      "" if accuracy is None else f"{accuracy:.4f}",
                      job.created_at.astimezone().strftime("%Y-%m-%d %H:%M"))
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
            table.add_row(str(point.step), number(point.value, args.key))
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
                      "" if key.last_value is None else number(key.last_value, key.key))
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
    entropy, information, std = answer.entropy, answer.mutual_information, answer.std
    if entropy is not None and information is not None:
        table.add_column("entropy")
        table.add_column("mutual info")
    table.add_column("next likeliest", no_wrap=True)
    for row, (label, probabilities) in enumerate(zip(answer.predictions, answer.probabilities,
                                                     strict=True)):
        spread = f" ± {std[row][label]:.3f}" if std is not None else ""
        cells = [str(row), str(label), f"{probabilities[label]:.3f}{spread}"]
        if entropy is not None and information is not None:
            cells += [f"{entropy[row]:.3f}", f"{information[row]:.3f}"]
        runners_up = sorted(range(len(probabilities)), key=lambda c: -probabilities[c])[1:3]
        cells.append("  ".join(f"{c} {probabilities[c]:.3f}" for c in runners_up))
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
