"""Central-difference gradient checks in float64, shared by the engine's tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from service.engine.layers.base import Layer


def numerical_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d array by central differences, perturbing `array` in place one entry at a time."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat = array.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        plus = f()
        flat[i] = original - eps
        minus = f()
        flat[i] = original
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def assert_close(analytic: np.ndarray, numeric: np.ndarray, *, rtol: float = 1e-6,
                 atol: float = 1e-8) -> None:
    """Relative error max|a - n| / max(|a|, |n|, atol) stays below rtol."""
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), atol)
    error = np.abs(analytic - numeric).max(initial=0.0) / scale
    assert error < rtol, f"relative gradient error {error:.3e} >= {rtol:.1e}"


def check_layer_gradients(layer: Layer, x: np.ndarray, *, training: bool = False,
                          rtol: float = 1e-6, seed: int = 0,
                          before_forward: Callable[[], None] | None = None) -> None:
    """Compare a built float64 layer's backward() with central differences of a random
    projection sum(forward(x) * r), for the input and for every parameter.

    With `training=True` the layer's randomness must repeat per forward call:
    `before_forward` (called before each one) rewinds it.
    """
    assert x.dtype == np.float64
    rewind = before_forward or (lambda: None)
    rng = np.random.default_rng(seed)
    rewind()
    out = layer.forward(x, training=training)
    projection = rng.standard_normal(out.shape)

    def loss() -> float:
        rewind()
        return float(np.sum(layer.forward(x, training=training) * projection))

    loss()
    dx = layer.backward(projection.copy())
    analytic = {"x": np.array(dx, copy=True)}
    analytic.update({k: v.copy() for k, v in layer.grads.items()})
    assert_close(analytic["x"], numerical_gradient(loss, x), rtol=rtol)
    for key, param in layer.params.items():
        assert_close(analytic[key], numerical_gradient(loss, param), rtol=rtol)
