"""Losses over a batch: a value and the gradient that starts backpropagation.

    cross_entropy  L = mean_i( logsumexp(z_i) - z_i[y_i] )    dL/dz = (softmax(z) - onehot(y)) / N
                   z are the logits feeding the network's final softmax: the softmax and the
                   log are fused, so L stays finite however confident the network is.
    mse            L = mean_i mean_k (p_ik - onehot(y)_ik)^2    dL/dp = 2 (p - onehot(y)) / (N K)
Targets are integer class labels of shape (N,).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from . import validation
from .layers.activations import log_softmax

LOSSES = ("cross_entropy", "mse")


class Loss(abc.ABC):
    """`outputs` are logits when `fuses_softmax`, the network's outputs otherwise."""

    name: ClassVar[str]
    fuses_softmax: ClassVar[bool]

    @abc.abstractmethod
    def value_and_grad(self, outputs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """outputs: (N, K), labels: (N,) -> (mean loss, dL/doutputs of shape (N, K))."""

    @abc.abstractmethod
    def sample_losses(self, outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """outputs: (N, K), labels: (N,) -> per-sample losses (N,) in float64."""


class CrossEntropy(Loss):
    name = "cross_entropy"
    fuses_softmax = True

    def value_and_grad(self, outputs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        n = outputs.shape[0]
        rows = np.arange(n)
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        grad = np.exp(shifted)
        sums = grad.sum(axis=1, keepdims=True)
        # mean of logsumexp(z) - z[y] = log(sum(exp(shifted))) - shifted[y]
        value = float(np.mean(np.log(sums[:, 0]) - shifted[rows, labels], dtype=np.float64))
        grad /= sums  # softmax(z)
        grad[rows, labels] -= 1.0
        grad *= grad.dtype.type(1.0 / n)
        return value, grad

    def sample_losses(self, outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        logp = log_softmax(outputs)
        return -logp[np.arange(outputs.shape[0]), labels].astype(np.float64)


class MeanSquaredError(Loss):
    name = "mse"
    fuses_softmax = False

    def value_and_grad(self, outputs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        diff = outputs.copy()
        diff[np.arange(outputs.shape[0]), labels] -= 1.0
        value = float(np.mean(diff * diff, dtype=np.float64))
        diff *= diff.dtype.type(2.0 / diff.size)
        return value, diff

    def sample_losses(self, outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        diff = outputs.astype(np.float64)
        diff[np.arange(outputs.shape[0]), labels] -= 1.0
        return np.mean(diff * diff, axis=1)


def get_loss(name: str) -> Loss:
    """The loss called `name` (one of LOSSES)."""
    validation.choice(name, "loss", LOSSES)
    return CrossEntropy() if name == "cross_entropy" else MeanSquaredError()
