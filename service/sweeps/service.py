"""Sweeps on behalf of their owner: create (every run checked first), read, cancel, delete."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import Conflict, ErrorDetail, InvalidSpec, NotFound, TooManyJobs, json_path
from service.jobs import lifecycle, submission
from service.jobs.specs import JobSpec
from service.store import jobs as job_rows
from service.store import sweep_summary as summary
from service.store import sweeps as sweep_rows
from service.store.models import Job, Sweep

from . import expansion
from .specs import SweepCreate


def create(session: Session, sweep: SweepCreate, *, owner: str,
           settings: Settings) -> tuple[Sweep, list[Job]]:
    """Check every generated run spec, then add the sweep and its queued runs to the session
    (the caller commits, then notifies). Nothing is added when any run is refused."""
    problems = expansion.problems(sweep)
    if problems:
        raise InvalidSpec("the sweep is invalid", problems)
    problems = submission.notify_problems(sweep.notify, settings)
    if problems:
        raise InvalidSpec("the webhook URL is not allowed", problems)
    count = expansion.run_count(sweep)
    if count > settings.max_sweep_runs:
        raise InvalidSpec("the sweep has too many runs", [ErrorDetail(
            "parameters", "the number of runs (grid: product of the value counts; random: "
            "samples) exceeds the server's limit", type="limit",
            expected=f"at most {settings.max_sweep_runs}", received=count)])
    active = job_rows.count_active(session, owner)
    if active + count > settings.max_queued_jobs_per_owner:
        raise TooManyJobs(
            f"{active} jobs are queued or running for this owner and the sweep adds {count}: "
            f"the limit is {settings.max_queued_jobs_per_owner}; retry when some have finished",
            headers={"Retry-After": "30"})
    base = sweep.base.model_dump(mode="json", by_alias=True, exclude_unset=True)
    runs = [(assignment, _run_spec(base, assignment, index))
            for index, assignment in enumerate(expansion.assignments(sweep))]
    for index, (assignment, spec) in enumerate(runs):
        try:
            submission.check(session, spec, owner=owner, settings=settings)
        except InvalidSpec as error:
            raise _refused(error.details, assignment, index) from None
    sweep_id = uuid.uuid4().hex
    row = sweep_rows.add(session, sweep_id=sweep_id, owner=owner, name=sweep.name,
                         spec=sweep.model_dump(mode="json", by_alias=True),
                         run_parameters={}, max_concurrent=sweep.max_concurrent)
    jobs: list[Job] = []
    parameters: dict[str, dict[str, Any]] = {}
    for assignment, spec in runs:
        job = submission.submit(session, spec, owner=owner, settings=settings)
        job.sweep_id = sweep_id
        parameters[job.id] = assignment
        jobs.append(job)
    row.run_parameters = parameters
    session.flush()
    return row, jobs


def _run_spec(base: dict[str, Any], assignment: expansion.Assignment, index: int) -> JobSpec:
    spec = expansion.apply(base, assignment)
    spec["name"] = f"{spec['name']} #{index + 1}"[:200]
    try:
        return JobSpec.model_validate(spec)
    except ValidationError as error:
        details = [ErrorDetail(json_path(problem["loc"], spec), problem["msg"],
                               received=problem.get("input"))
                   for problem in error.errors(include_url=False)]
        raise _refused(details, assignment, index) from None


def _refused(details: list[ErrorDetail], assignment: expansion.Assignment,
             index: int) -> InvalidSpec:
    """The job-spec problems of run `index` told as problems of the parameters that made it."""
    problems = []
    for detail in details:
        path = _responsible(detail.path, assignment)
        problems.append(ErrorDetail(
            f"parameters.{path}",
            f"run {index + 1} sets {path} = {assignment[path]!r}: the job-spec field "
            f"{detail.path} refused it: {detail.message}",
            type=detail.type, expected=detail.expected, received=assignment[path]))
    return InvalidSpec("a generated run's job spec is invalid", problems)


def _responsible(field: str, assignment: expansion.Assignment) -> str:
    """The parameter path that most likely produced a problem at job-spec `field`."""
    for path in assignment:
        if field == path or field.startswith(path + ".") or field.startswith(path + "["):
            return path
    if expansion.DROPOUT_RATE in assignment and field.endswith(".rate"):
        return expansion.DROPOUT_RATE
    return next(iter(assignment))


def get_owned(session: Session, sweep_id: str, owner: str) -> Sweep:
    """The sweep, or NotFound (also when it is someone else's: ids are not confirmed)."""
    sweep = sweep_rows.get(session, sweep_id, owner=owner)
    if sweep is None:
        raise NotFound(f"no sweep with id {sweep_id!r}")
    return sweep


def cancel(session: Session, sweep: Sweep) -> int:
    """Cancel every run not yet finished; how many were. Conflict when all had finished."""
    pending = [job for job in sweep_rows.runs(session, sweep.id)
               if job.status in job_rows.ACTIVE]
    if not pending:
        raise Conflict(f"sweep {sweep.id} has no queued or running run left to cancel")
    for job in pending:
        lifecycle.cancel(session, job)
    return len(pending)


def delete(session: Session, sweep: Sweep) -> list[str]:
    """Remove a finished sweep with its runs; the deleted run ids."""
    runs = sweep_rows.runs(session, sweep.id)
    active = [job.id for job in runs if job.status in job_rows.ACTIVE]
    if active:
        raise Conflict(f"sweep {sweep.id} has {len(active)} queued or running run(s); cancel it "
                       "and wait until they have stopped before deleting it")
    sweep_rows.remove(session, sweep.id)
    return [job.id for job in runs]


def runs_csv(sweep: Sweep, runs: list[summary.RunResult]) -> str:
    """One row per run: job id, status, each parameter, final metrics, gaps, best accuracy."""
    parameters = list(sweep.spec.get("parameters", {}))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["job_id", "status", *parameters, *summary.FINAL_METRICS, "accuracy_gap",
                     "loss_gap", "best_test_accuracy", "best_test_accuracy_step"])
    for run in runs:
        writer.writerow([run.job_id, run.status,
                         *(run.parameters.get(p) for p in parameters),
                         *(run.final[m] for m in summary.FINAL_METRICS), run.accuracy_gap,
                         run.loss_gap, run.best_test_accuracy, run.best_test_accuracy_step])
    return out.getvalue()
