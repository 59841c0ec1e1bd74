"""Accepting a job: the whole spec is checked (limits, data, shapes, loss) before a row exists."""

from __future__ import annotations

import math
import uuid

from sqlalchemy.orm import Session

from service.config import Settings
from service.engine.datasets import BUILTIN_DATASETS, kept_training_rows
from service.engine.errors import SpecError
from service.engine.network import Network, build_network
from service.engine.training import TrainingConfig
from service.errors import ErrorDetail, InvalidSpec, TooManyJobs, spec_detail
from service.store import jobs as job_rows
from service.store.models import Job
from service.webhooks import urls as webhook_urls

from . import data as job_data
from .specs import DataSpec, JobSpec, NotifySpec, UploadedData


def new_id() -> str:
    return uuid.uuid4().hex


def submit(session: Session, spec: JobSpec, *, owner: str, settings: Settings) -> Job:
    """Check `spec` and add a queued job to the session (the caller commits, then notifies).

    The checks run first: on SQLite a write session holds the database's write lock from its
    first statement to the commit, and they need the database only for an uploaded dataset.
    """
    facts = check(session, spec, owner=owner, settings=settings)
    filled = spec.with_checkpoint_defaults(settings.checkpoint_every_iterations,
                                           settings.checkpoint_every_seconds)
    if job_rows.count_active(session, owner) >= settings.max_queued_jobs_per_owner:
        raise TooManyJobs(
            f"{settings.max_queued_jobs_per_owner} jobs are already queued or running for this "
            "owner; retry when some have finished",
            headers={"Retry-After": "30"},
        )
    return job_rows.create(session, job_id=new_id(), owner=owner, name=spec.name,
                           spec=filled.stored(), dataset_id=facts.dataset_id,
                           total_iterations=spec.training.iterations)


def check(session: Session, spec: JobSpec, *, owner: str | None,
          settings: Settings) -> job_data.DataFacts:
    """Every rule a spec must satisfy beyond its JSON schema; InvalidSpec names each problem."""
    problems = _limit_problems(spec, settings)
    if problems:
        raise InvalidSpec("the job spec exceeds this server's limits", problems)
    problems = notify_problems(spec.notify, settings)
    if problems:
        raise InvalidSpec("the webhook URL is not allowed", problems)
    problems = _builtin_data_problems(spec.data)
    if problems:
        raise InvalidSpec("the data cannot be generated and split as asked", problems)
    facts = job_data.facts(session, spec.data, owner=owner)
    if spec.model.input_shape not in facts.input_shapes:
        raise InvalidSpec("the model's input does not fit the data", [ErrorDetail(
            "model.input_shape", "the data's samples have another shape",
            expected=" or ".join(str(s) for s in facts.input_shapes),
            received=spec.model.input_shape)])
    network = plan_network(spec)
    if network.parameter_count() > settings.max_parameters:
        raise InvalidSpec("the network is too large", [ErrorDetail(
            "model.layers", "too many trainable parameters", type="limit",
            expected=f"at most {settings.max_parameters}",
            received=network.parameter_count())])
    last = len(spec.model.layers) - 1
    outputs = network.output_shape
    if len(outputs) != 1 or outputs[0] < facts.n_classes:
        raise InvalidSpec("the network's outputs do not cover the classes", [ErrorDetail(
            f"model.layers[{last}]", "the last layer must output one value per class",
            expected=f"output shape ({facts.n_classes},) or wider",
            received=list(outputs))])
    if spec.training.loss == "cross_entropy" and not network.ends_in_softmax:
        raise InvalidSpec("cross_entropy needs softmax outputs", [ErrorDetail(
            "training.loss", "cross_entropy needs a network whose last activation is softmax",
            expected="a final dense layer with activation softmax, or a softmax layer",
            received=spec.training.loss)])
    _check_training(spec)
    evaluations = math.ceil(spec.training.iterations / (spec.training.eval_every or 1))
    eval_rows = (facts.n_train + facts.n_test) * evaluations
    if eval_rows > settings.max_eval_rows:
        raise InvalidSpec("evaluation would cost too much", [ErrorDetail(
            "training.eval_every", "too many rows evaluated over the run: (train + test rows) "
                                   "x ceil(iterations / eval_every)", type="limit",
            expected=f"at most {settings.max_eval_rows} rows", received=eval_rows)])
    return facts


def plan_network(spec: JobSpec) -> Network:
    """The network with its shapes checked but no weights allocated."""
    try:
        return build_network(spec.engine_layers(), spec.model.input_shape,
                             seed=spec.training.seed, dtype=spec.model.dtype, materialize=False)
    except SpecError as error:
        raise InvalidSpec("the network is invalid", [_layer_detail(error)]) from None


def _layer_detail(error: SpecError) -> ErrorDetail:
    if error.layer_index is None:
        path = f"model.{error.field}" if error.field else "model"
    else:
        path = f"model.layers[{error.layer_index}]"
        if error.field:
            path += f".{error.field}"
    return spec_detail(error, path)


def _check_training(spec: JobSpec) -> None:
    schedule, learning_rate = spec.training.lr_schedule, spec.training.optimizer.learning_rate
    if schedule.type == "cosine" and schedule.min_learning_rate > learning_rate:
        raise InvalidSpec("the learning-rate schedule is invalid", [ErrorDetail(
            "training.lr_schedule.min_learning_rate", "a cosine schedule decays from the "
            "optimizer's learning_rate down to min_learning_rate",
            expected=f"at most training.optimizer.learning_rate ({learning_rate})",
            received=schedule.min_learning_rate)])
    try:
        TrainingConfig.from_dict(spec.engine_training())
    except SpecError as error:
        raise InvalidSpec("the training settings are invalid",
                          [spec_detail(error, f"training.{error.field}")]) from None


def _limit_problems(spec: JobSpec, settings: Settings) -> list[ErrorDetail]:
    checks: list[tuple[str, int, int]] = [
        ("model.layers", len(spec.model.layers), settings.max_layers),
        ("training.iterations", spec.training.iterations, settings.max_iterations),
        ("training.batch_size", spec.training.batch_size, settings.max_batch_size),
    ]
    return [ErrorDetail(path, "exceeds the server's limit", type="limit",
                        expected=f"at most {limit}", received=value)
            for path, value, limit in checks if value > limit]


def notify_problems(notify: NotifySpec | None, settings: Settings) -> list[ErrorDetail]:
    """A webhook URL (a job's or a sweep's `notify.url`) must resolve to public addresses only
    (or name an allowed host)."""
    if notify is None:
        return []
    try:
        webhook_urls.checked_addresses(webhook_urls.parse(notify.url), settings)
    except webhook_urls.UnsafeURL as refused:
        return [ErrorDetail("notify.url", refused.reason, type="unsafe_url",
                            expected=refused.expected, received=notify.url)]
    return []


def _builtin_data_problems(data: DataSpec) -> list[ErrorDetail]:
    """What the engine would refuse only when a worker loads the data: fewer than two samples
    per class, a test fraction that leaves the test set empty, or a train_size above the
    training rows the split leaves."""
    if isinstance(data, UploadedData):
        return []  # an upload was split when it was stored
    params = job_data.builtin_params(data)
    info = BUILTIN_DATASETS[data.dataset]
    n_samples = int(params.get("n_samples", info["n_samples"]))
    n_classes = int(params.get("n_classes", info["n_classes"]))
    if n_samples < 2 * n_classes:
        return [ErrorDetail("data.n_samples", "too few samples for the classes",
                            expected=f"at least 2 per class: >= {2 * n_classes}",
                            received=n_samples)]
    if math.floor(n_samples * data.test_fraction + 0.5) < 1:
        return [ErrorDetail("data.test_fraction", "the test set would be empty",
                            expected=f"at least {0.5 / n_samples:.3g} for {n_samples} samples",
                            received=data.test_fraction)]
    n_train = n_samples - math.floor(n_samples * data.test_fraction + 0.5)
    try:
        kept_training_rows(n_train, params.get("train_size"))
    except SpecError as error:
        return [spec_detail(error, f"data.{error.field}")]
    return []
