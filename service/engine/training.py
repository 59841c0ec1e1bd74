"""The training loop: sampling, schedules, updates, evaluation, metric batches, checkpoints.

Every random draw (weights, dropout masks, batch sampling) comes from the network's one
np.random.Generator, so the same layers, data, config and seed give bit-identical metrics and
weights, and a checkpoint (weights, optimizer state, generator state, sampler state, iteration)
resumes to exactly the run that never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np

from . import checkpoint as checkpoint_file
from . import validation
from .errors import NonFiniteLossError, SpecError
from .losses import LOSSES, Loss, get_loss
from .network import Network
from .optimizers import Optimizer, build_optimizer
from .schedules import build_dropout_schedule, build_lr_schedule
from .specs import call_with_spec

SAMPLING = ("epoch", "random")
METRIC_KEYS = ("batch_loss", "learning_rate", "dropout_rate",
               "train_loss", "train_accuracy", "test_loss", "test_accuracy")


class MetricRecord(NamedTuple):
    """One metric value at one iteration (`step`, 1-based), with the wall-clock time."""

    step: int
    key: str
    value: float
    timestamp: float


class TrainingData(Protocol):
    """Arrays to train on: x_*: (N, *input_shape) float, y_*: (N,) integer class labels."""

    # Read-only properties, so a frozen dataclass such as engine.datasets.Dataset matches.
    @property
    def x_train(self) -> np.ndarray: ...
    @property
    def y_train(self) -> np.ndarray: ...
    @property
    def x_test(self) -> np.ndarray: ...
    @property
    def y_test(self) -> np.ndarray: ...


@dataclass(frozen=True)
class TrainingConfig:
    """How to train; `from_dict` validates a job spec's "training" object."""

    iterations: int
    batch_size: int
    eval_every: int
    loss: str = "cross_entropy"
    sampling: str = "epoch"
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"type": "sgd", "learning_rate": 0.01})
    lr_schedule: dict[str, Any] = field(default_factory=lambda: {"type": "constant"})
    dropout_schedule: dict[str, Any] = field(default_factory=lambda: {"type": "constant"})
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        validation.integer(self.iterations, "iterations", minimum=1)
        validation.integer(self.batch_size, "batch_size", minimum=1)
        validation.integer(self.eval_every, "eval_every", minimum=1)
        validation.integer(self.eval_batch_size, "eval_batch_size", minimum=1)
        validation.choice(self.loss, "loss", LOSSES)
        validation.choice(self.sampling, "sampling", SAMPLING)
        # Build once to validate; the trainer builds its own.
        build_optimizer(self.optimizer)
        build_lr_schedule(self.lr_schedule)
        build_dropout_schedule(self.dropout_schedule)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> TrainingConfig:
        """From {"iterations": 2000, "batch_size": 64, ...}; eval_every defaults to
        max(1, iterations // 100)."""
        spec = dict(spec)
        if "eval_every" not in spec and isinstance(spec.get("iterations"), int):
            spec["eval_every"] = max(1, spec["iterations"] // 100)
        return call_with_spec(cls, spec, ignore=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_step(network: Network, loss: Loss, optimizer: Optimizer, x: np.ndarray,
               y: np.ndarray, lr: float) -> float:
    """One training step on the batch (x, y): forward in training mode, loss, backward, and
    the update; returns the batch loss. A non-finite loss leaves the weights untouched."""
    fused = loss.fuses_softmax
    outputs = network.forward(x, training=True, logits=fused)
    value, grad = loss.value_and_grad(outputs, y)
    if not math.isfinite(value):
        return value
    network.backward(grad, logits=fused)
    optimizer.step(network.parameters(), network.grads(), lr)
    network.apply_constraints()
    return value


class BatchSampler:
    """Training batch indices: `epoch` shuffles without replacement (a stream of
    permutations, so every batch is full), `random` draws with replacement."""

    def __init__(self, kind: str, n: int, batch_size: int, rng: np.random.Generator) -> None:
        self.kind = kind
        self.n = n
        self.batch_size = batch_size
        self.rng = rng
        self.permutation = np.empty(0, dtype=np.int64)
        self.position = 0

    def next(self) -> np.ndarray:
        """(batch_size,) int64 indices into the training set."""
        if self.kind == "random":
            return self.rng.integers(0, self.n, self.batch_size)
        parts = []
        needed = self.batch_size
        while needed:
            if self.position == self.permutation.size:
                self.permutation = self.rng.permutation(self.n)
                self.position = 0
            take = min(needed, self.permutation.size - self.position)
            parts.append(self.permutation[self.position:self.position + take])
            self.position += take
            needed -= take
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


TrainingStatus = Literal["completed", "stopped"]


class Trainer:
    """Trains `network` on `data` per `config`, from scratch or from a checkpoint.

    `run` calls `on_metrics(records)` with the records since its last call at least every
    `flush_seconds`, at every step that is a multiple of `flush_every` (when set), and before
    returning or raising. During that call `self.iteration` is the last step in the records, so
    `self.checkpoint()` taken there resumes exactly after them.
    """

    def __init__(self, network: Network, data: TrainingData, config: TrainingConfig, *,
                 checkpoint: bytes | None = None) -> None:
        self.network = network
        self.config = config
        self.loss = get_loss(config.loss)
        if self.loss.fuses_softmax and not network.ends_in_softmax:
            raise SpecError("cross_entropy needs a network whose last activation is softmax",
                            field="loss", expected="a final softmax layer or activation",
                            received=config.loss)
        self.x_train, self.y_train = _checked(network, data.x_train, data.y_train, "train")
        self.x_test, self.y_test = _checked(network, data.x_test, data.y_test, "test")
        self.optimizer = build_optimizer(config.optimizer)
        self.lr_schedule = build_lr_schedule(config.lr_schedule)
        self.dropout_schedule = build_dropout_schedule(config.dropout_schedule)
        self.sampler = BatchSampler(config.sampling, len(self.x_train), config.batch_size,
                                    network.rng)
        self.iteration = 0
        self._batch = np.empty((config.batch_size, *network.input_shape), dtype=network.dtype)
        if checkpoint is not None:
            self._restore(checkpoint)

    # -- the loop --------------------------------------------------------------------------

    def run(self, *, on_metrics: Callable[[list[MetricRecord]], None],
            should_stop: Callable[[], bool] = lambda: False, flush_seconds: float = 1.0,
            flush_every: int | None = None) -> TrainingStatus:
        """Train until config.iterations; poll `should_stop` before every iteration."""
        records: list[MetricRecord] = []
        last_flush = time.monotonic()
        total = self.config.iterations
        try:
            while self.iteration < total:
                if should_stop():
                    return "stopped"
                self._step(records)
                step = self.iteration
                if step % self.config.eval_every == 0 or step == total:
                    records.extend(self._evaluate(step))
                now = time.monotonic()
                if (flush_every and step % flush_every == 0) or now - last_flush >= flush_seconds:
                    batch, records = records, []
                    on_metrics(batch)
                    last_flush = now
            return "completed"
        finally:
            if records:
                batch, records = records, []
                on_metrics(batch)

    def _step(self, records: list[MetricRecord]) -> None:
        t = self.iteration
        step = t + 1
        network, total = self.network, self.config.iterations
        rates = [self.dropout_schedule(t, layer.base_rate, total)
                 for layer in network.dropout_layers]
        network.set_dropout_rates(rates)
        lr = self.lr_schedule(t, self.optimizer.learning_rate, total)
        indices = self.sampler.next()
        np.take(self.x_train, indices, axis=0, out=self._batch)
        value = train_step(network, self.loss, self.optimizer, self._batch,
                           self.y_train[indices], lr)
        now = time.time()
        records.append(MetricRecord(step, "learning_rate", lr, now))
        records.append(MetricRecord(step, "dropout_rate", rates[0] if rates else 0.0, now))
        if not math.isfinite(value):
            raise NonFiniteLossError(step, value)
        records.append(MetricRecord(step, "batch_loss", value, now))
        self.iteration = step

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) over (x, y) in inference mode, in chunks."""
        fused = self.loss.fuses_softmax
        chunk = self.config.eval_batch_size
        total_loss, correct = 0.0, 0
        for start in range(0, len(x), chunk):
            outputs = self.network.forward(x[start:start + chunk], training=False, logits=fused)
            labels = y[start:start + chunk]
            total_loss += float(self.loss.sample_losses(outputs, labels).sum())
            correct += int(np.count_nonzero(outputs.argmax(axis=1) == labels))
        return total_loss / len(x), correct / len(x)

    def _evaluate(self, step: int) -> list[MetricRecord]:
        train_loss, train_accuracy = self.evaluate(self.x_train, self.y_train)
        test_loss, test_accuracy = self.evaluate(self.x_test, self.y_test)
        for value in (train_loss, test_loss):
            if not math.isfinite(value):
                raise NonFiniteLossError(step, value)
        now = time.time()
        return [MetricRecord(step, "train_loss", train_loss, now),
                MetricRecord(step, "train_accuracy", train_accuracy, now),
                MetricRecord(step, "test_loss", test_loss, now),
                MetricRecord(step, "test_accuracy", test_accuracy, now)]

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        """The full training state after `self.iteration` iterations, as bytes."""
        optimizer_scalars, optimizer_arrays = self.optimizer.state_dict()
        meta = {
            "format": checkpoint_file.CHECKPOINT_FORMAT,
            "version": checkpoint_file.FORMAT_VERSION,
            "iteration": self.iteration,
            "architecture": self.network.architecture(),
            "config": _resumable(self.config.to_dict()),
            "rng": self.network.rng.bit_generator.state,
            "sampler": {"kind": self.sampler.kind, "position": self.sampler.position},
            "optimizer": optimizer_scalars,
            "dropout_rates": [layer.rate for layer in self.network.dropout_layers],
        }
        arrays = {f"param/{k}": v for k, v in self.network.parameters().items()}
        arrays.update({f"optimizer/{k}": v for k, v in optimizer_arrays.items()})
        arrays["sampler/permutation"] = self.sampler.permutation
        return checkpoint_file.pack(meta, arrays)

    def _restore(self, data: bytes) -> None:
        meta, arrays = checkpoint_file.unpack(data,
                                              expected_format=checkpoint_file.CHECKPOINT_FORMAT)
        if meta["architecture"] != self.network.architecture():
            raise ValueError("checkpoint was taken from a different network architecture")
        if meta["config"] != _resumable(self.config.to_dict()):
            raise ValueError("checkpoint was taken with a different training config")
        self.network.load_state_dict({k.removeprefix("param/"): v for k, v in arrays.items()
                                      if k.startswith("param/")})
        self.optimizer.load_state_dict(
            meta["optimizer"],
            {k.removeprefix("optimizer/"): v for k, v in arrays.items()
             if k.startswith("optimizer/")},
        )
        self.network.rng.bit_generator.state = meta["rng"]
        self.sampler.permutation = arrays["sampler/permutation"].astype(np.int64)
        self.sampler.position = int(meta["sampler"]["position"])
        self.network.set_dropout_rates(meta["dropout_rates"])
        self.iteration = int(meta["iteration"])


def train(network: Network, data: TrainingData, config: TrainingConfig, *,
          on_metrics: Callable[[list[MetricRecord]], None],
          should_stop: Callable[[], bool] = lambda: False,
          checkpoint: bytes | None = None) -> Trainer:
    """Train `network` (from `checkpoint` when given) and return the trainer when it ends.

    Raises NonFiniteLossError (naming the iteration) when the loss stops being finite.
    """
    trainer = Trainer(network, data, config, checkpoint=checkpoint)
    trainer.run(on_metrics=on_metrics, should_stop=should_stop)
    return trainer


def _resumable(config: dict[str, Any]) -> dict[str, Any]:
    """The config fields a checkpoint must agree on (training may be extended)."""
    return {key: value for key, value in config.items() if key != "iterations"}


def _checked(network: Network, x: np.ndarray, y: np.ndarray,
             split: str) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim < 2 or tuple(x.shape[1:]) != network.input_shape:
        raise SpecError(f"{split} data does not fit the network's input",
                        field="input_shape", expected=f"samples of shape {network.input_shape}",
                        received=list(x.shape[1:]))
    if len(x) == 0 or len(x) != len(y):
        raise SpecError(f"{split} data needs as many labels as samples, at least one",
                        field="data", expected=f"{len(x)} labels", received=len(y))
    classes = network.output_shape[0] if network.output_shape else 0
    if len(network.output_shape) != 1 or y.min() < 0 or y.max() >= classes:
        raise SpecError(f"{split} labels must index the network's outputs",
                        field="layers", expected=f"labels in [0, {classes})",
                        received=[int(y.min()), int(y.max())])
    return np.ascontiguousarray(x, dtype=network.dtype), np.asarray(y, dtype=np.int64)
