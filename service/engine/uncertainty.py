"""Monte-Carlo dropout prediction (Gal and Ghahramani 2016) and the measures that judge it.

`mc_dropout_predict` runs T stochastic forwards of a trained softmax network, every dropout
layer on at its current rate (the rate of the last training step: schedules change it, and
model files keep it), and summarises the T class distributions p_t of each row:

    mean        p̄ = (1/T) Σ_t p_t
    predicted   argmax p̄
    entropy     H[p̄] = -Σ_c p̄_c log p̄_c                    (predictive entropy, nats)
    mutual_information  H[p̄] - (1/T) Σ_t H[p_t]            (BALD: 0 <= MI <= H[p̄] <= log C)
    std         sqrt((1/T) Σ_t p_t² - p̄²) per class          (population std over samples)

The T x rows forwards run as batched matrix products over the stacked batch (t, row), in
chunks of at most `max_chunk_rows` stacked rows. Noise comes from counter-based streams
(Philox) keyed by (seed, layer index) and addressed by the stacked row's index t * rows + row,
so a given seed draws the same masks whatever the chunk size; only the BLAS rounding of a
different batch size can differ (within float32 rounding). The network's own generator and
training state are never touched, so frozen networks (Network.freeze) work, and a served
model's state is the same before and after.

DropConnect weights are not resampled here (dense layers run as at inference): the masks
would be (rows, in, out) per sample, one weight matrix per stacked row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import validation
from .layers import Dropout, DropoutBase, GaussianDropout, SpatialDropout2D
from .network import Network

MAX_MC_SAMPLES = 1000
DEFAULT_CHUNK_ROWS = 2048
"""Stacked rows per batched forward: about 2 MiB per 256 float32 units of the widest layer."""

_BITS_PER_COUNTER = 4
"""A Philox counter value yields four 64-bit words."""
_LEVELS = 2**16
"""Keep probabilities are resolved to 2**-16, as in the training masks (bernoulli_keep_mask)."""


@dataclass(frozen=True)
class MCDropoutPrediction:
    """The summary of `samples` stochastic forwards of N rows over C classes (float64)."""

    mean: np.ndarray
    """(N, C) mean class probabilities."""
    predicted: np.ndarray
    """(N,) int64 argmax of `mean`."""
    entropy: np.ndarray
    """(N,) predictive entropy H[mean] in nats."""
    mutual_information: np.ndarray
    """(N,) BALD: entropy minus the mean entropy of the single samples."""
    std: np.ndarray
    """(N, C) standard deviation of each class probability across samples."""
    samples: int


def mc_dropout_predict(network: Network, x: np.ndarray, *, samples: int, seed: int,
                       max_chunk_rows: int = DEFAULT_CHUNK_ROWS) -> MCDropoutPrediction:
    """`samples` (T, 1..1000) stochastic forwards of x: (N, *input_shape), summarised per row.

    The network must end in softmax (its outputs are class probabilities). Same network,
    inputs and seed give the same answer; see the module docstring for the maths.
    Raises SpecError for an invalid `samples`, `seed` or `max_chunk_rows` and ValueError for
    inputs of the wrong shape or a network without softmax outputs.
    """
    validation.integer(samples, "mc_samples", minimum=1, maximum=MAX_MC_SAMPLES)
    validation.integer(seed, "seed", minimum=0)
    validation.integer(max_chunk_rows, "max_chunk_rows", minimum=1)
    if not network.ends_in_softmax or len(network.output_shape) != 1:
        raise ValueError("MC dropout needs class probabilities: expected a network whose last "
                         f"activation is softmax, received outputs of shape "
                         f"{network.output_shape} (softmax: {network.ends_in_softmax})")
    if not isinstance(x, np.ndarray) or x.ndim < 2 or x.shape[1:] != network.input_shape:
        shape = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"expected input of shape (batch, "
                         f"{', '.join(map(str, network.input_shape))}); received {shape}")
    rows, classes = x.shape[0], network.output_shape[0]
    x = np.ascontiguousarray(x, dtype=network.dtype)
    noises = [_LayerNoise(layer, seed, index) if isinstance(layer, DropoutBase) else None
              for index, layer in enumerate(network.layers)]
    sum_p = np.zeros((rows, classes))
    sum_p2 = np.zeros((rows, classes))
    sum_entropy = np.zeros(rows)
    for chunk in _chunks(rows, samples, max_chunk_rows):
        block = x[chunk.row_start:chunk.row_start + chunk.row_count]
        stacked = np.tile(block, (chunk.sample_count,) + (1,) * (x.ndim - 1))
        h = stacked
        for layer, noise in zip(network.layers, noises, strict=True):
            if noise is None:
                h = layer.forward(h, training=False)
            else:
                h = noise.apply(h, chunk, rows, in_place=not np.may_share_memory(h, stacked))
        p = h.reshape(chunk.sample_count, chunk.row_count, classes).astype(np.float64)
        span = slice(chunk.row_start, chunk.row_start + chunk.row_count)
        sum_p[span] += p.sum(axis=0)
        sum_p2[span] += np.einsum("trc,trc->rc", p, p)
        sum_entropy[span] += entropy(p).sum(axis=0)
    mean = sum_p / samples
    predictive = entropy(mean)
    return MCDropoutPrediction(
        mean=mean,
        predicted=mean.argmax(axis=1),
        entropy=predictive,
        # Rounding can leave H[mean] a hair below the mean entropy when the samples agree.
        mutual_information=np.clip(predictive - sum_entropy / samples, 0.0, None),
        std=np.sqrt(np.clip(sum_p2 / samples - mean * mean, 0.0, None)),
        samples=samples,
    )


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """-Σ_c p_c log p_c over the last axis, in nats (0 log 0 = 0): (..., C) -> (...)."""
    p = np.asarray(probabilities, dtype=np.float64)
    return -np.sum(p * np.log(np.maximum(p, np.finfo(np.float64).tiny)), axis=-1)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, *,
                               bins: int = 15) -> float:
    """ECE = Σ_b (n_b / N) |accuracy_b - confidence_b| over `bins` equal-width confidence bins
    (lo, hi], confidence being the top class probability (Guo et al. 2017).

    probabilities: (N, C); labels: (N,) class indices.
    """
    validation.integer(bins, "bins", minimum=1)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if probabilities.ndim != 2 or labels.shape != probabilities.shape[:1] or not len(labels):
        raise ValueError(f"expected probabilities (N, C) and labels (N,) with N >= 1, received "
                         f"{probabilities.shape} and {labels.shape}")
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    gap = np.abs(np.bincount(index, correct, minlength=bins)
                 - np.bincount(index, confidence, minlength=bins))
    return float(gap.sum() / len(labels))


def roc_auc(negative_scores: np.ndarray, positive_scores: np.ndarray) -> float:
    """Area under the ROC curve of a score meant to be higher for positives:
    P(positive > negative) + P(tie) / 2, the Mann-Whitney U over n_pos * n_neg, from average
    ranks (ties share their mean rank). Scores: (n_neg,) and (n_pos,), both non-empty."""
    negative = np.asarray(negative_scores, dtype=np.float64).ravel()
    positive = np.asarray(positive_scores, dtype=np.float64).ravel()
    if not negative.size or not positive.size:
        raise ValueError(f"expected non-empty score arrays, received {negative.size} negative "
                         f"and {positive.size} positive scores")
    scores = np.concatenate([negative, positive])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    positive_rank_sum = average_rank[inverse[negative.size:]].sum()
    u = positive_rank_sum - positive.size * (positive.size + 1) / 2.0
    return float(u / (positive.size * negative.size))


@dataclass(frozen=True)
class _Chunk:
    """Samples [sample_start, +sample_count) x rows [row_start, +row_count), stacked
    sample-major; either every row or a single sample, so the stacked indices
    t * rows + row it covers are contiguous."""

    sample_start: int
    sample_count: int
    row_start: int
    row_count: int


def _chunks(rows: int, samples: int, max_chunk_rows: int) -> list[_Chunk]:
    if rows <= max_chunk_rows:
        per_chunk = max_chunk_rows // rows
        return [_Chunk(start, min(per_chunk, samples - start), 0, rows)
                for start in range(0, samples, per_chunk)]
    return [_Chunk(t, 1, start, min(max_chunk_rows, rows - start))
            for t in range(samples) for start in range(0, rows, max_chunk_rows)]


class _LayerNoise:
    """One dropout layer's MC noise: unit u's values come from Philox(key(seed, layer),
    counter = u * counters_per_unit), a unit being a stacked row, or an MC sample when the
    layer's noise_shape shares one mask across the batch."""

    def __init__(self, layer: DropoutBase, seed: int, layer_index: int) -> None:
        if layer.input_shape is None:
            raise RuntimeError("MC dropout needs a built network")
        self.rate = layer.rate
        self.gaussian = isinstance(layer, GaussianDropout)
        self.per_sample = False
        shape = layer.input_shape
        if isinstance(layer, SpatialDropout2D):
            shape = (shape[0], 1, 1)
        elif isinstance(layer, Dropout) and layer.noise_shape is not None:
            self.per_sample = layer.noise_shape[0] == 1
            shape = tuple(size if noise is None else noise
                          for noise, size in zip(layer.noise_shape[1:], shape, strict=True))
        elif not isinstance(layer, (Dropout, GaussianDropout)):
            raise TypeError(f"MC dropout does not know how to sample {type(layer).__name__}")
        self.shape = shape
        self.dtype = layer.dtype
        self.count = math.prod(shape)
        # Bernoulli: 16 bits per entry; Gaussian: one 64-bit uniform per entry, in pairs.
        words = 2 * ((self.count + 1) // 2) if self.gaussian else (self.count + 3) // 4
        self.counters_per_unit = -(-words // _BITS_PER_COUNTER)
        self.key = np.random.SeedSequence([seed, layer_index]).generate_state(2, np.uint64)

    def apply(self, h: np.ndarray, chunk: _Chunk, rows: int, *, in_place: bool) -> np.ndarray:
        """h: (sample_count * row_count, *shape) -> h * noise, the same shape."""
        if self.rate == 0.0:
            return h
        unit_rows = 1 if self.per_sample else chunk.row_count
        first = (chunk.sample_start if self.per_sample
                 else chunk.sample_start * rows + chunk.row_start)
        units = chunk.sample_count * unit_rows
        bits = np.random.Philox(key=self.key, counter=first * self.counters_per_unit).random_raw(
            units * self.counters_per_unit * _BITS_PER_COUNTER).reshape(units, -1)
        noise_shape = (chunk.sample_count, unit_rows, *self.shape)
        view = h.reshape(chunk.sample_count, chunk.row_count, *h.shape[1:])
        out = view if in_place else np.empty_like(view)
        if self.gaussian:
            noise = self._gaussian(bits).reshape(noise_shape)
            np.multiply(view, noise, out=out)
        else:
            keep = 1.0 - self.rate
            threshold = round(keep * _LEVELS)
            if threshold >= _LEVELS:
                return h
            mask = (bits.view(np.uint16)[:, :self.count] < np.uint16(threshold))
            np.multiply(view, mask.reshape(noise_shape), out=out)
            out *= self.dtype.type(1.0 / keep)
        return out.reshape(h.shape)

    def _gaussian(self, bits: np.ndarray) -> np.ndarray:
        """(units, count) N(1, rate / (1 - rate)) values by Box-Muller from 53-bit uniforms."""
        half = (self.count + 1) // 2
        uniform = ((bits[:, :2 * half] >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
        radius = np.sqrt(-2.0 * np.log(uniform[:, :half]))
        angle = 2.0 * np.pi * uniform[:, half:]
        normal = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return (1.0 + stddev * normal[:, :self.count]).astype(self.dtype)
