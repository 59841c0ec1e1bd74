"""2-D max and average pooling over NCHW images ("valid": windows that do not fit are dropped)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional, validation
from ..errors import SpecError
from ..functional import ConvGeometry
from .base import Layer, Shape


class Pool2D(Layer):
    """Shared shape rules: x: (batch, C, H, W) -> (batch, C, OH, OW),
    OH = floor((H - ph) / sh) + 1 and likewise OW.

    Both poolings loop over the ph*pw window offsets, each a strided (batch, C, OH, OW) view of
    the input. When windows do not overlap (stride >= pool_size, e.g. the default
    stride == pool_size) every input pixel lies in at most one window, and backward assigns
    the gradient views instead of accumulating into them (zeroing only the uncovered border
    when the windows tile the input).
    """

    def __init__(
        self, pool_size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.pool_size = validation.pair(pool_size, "pool_size", minimum=1)
        self.stride = (
            self.pool_size if stride is None else validation.pair(stride, "stride", minimum=1)
        )
        self.disjoint = all(s >= p for s, p in zip(self.stride, self.pool_size, strict=True))
        self._geometries: dict[tuple[int, ...], ConvGeometry] = {}
        self._x: np.ndarray | None = None

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(input_shape) != 3:
            raise SpecError(
                f"{self.type_name} needs image input (channels, height, width)",
                field="type",
                expected="an input of shape (C, H, W)",
                received=list(input_shape),
            )
        channels, height, width = input_shape
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        out_height = functional.pool_output_size(height, ph, sh)
        out_width = functional.pool_output_size(width, pw, sw)
        if out_height < 1 or out_width < 1:
            raise SpecError(
                f"{self.type_name} output would be empty: the window is larger than the input",
                field="pool_size",
                expected=f"a pool_size no larger than the input {height}x{width}",
                received=f"input {height}x{width}, pool_size {ph}x{pw}",
            )
        return (channels, out_height, out_width)

    def _geometry(self, shape: tuple[int, ...]) -> ConvGeometry:
        geo = self._geometries.get(shape)
        if geo is None:
            geo = ConvGeometry.of(shape, self.pool_size, self.stride)
            self._geometries[shape] = geo
        return geo

    def _output(self, geo: ConvGeometry) -> np.ndarray:
        return self._buffer("y", (geo.batch, geo.channels, geo.out_height, geo.out_width))

    def _input_grad(self, geo: ConvGeometry) -> np.ndarray:
        return self._buffer("dx", (geo.batch, geo.channels, geo.height, geo.width))

    def _clear_uncovered(self, dx: np.ndarray, geo: ConvGeometry) -> None:
        """Zero dx where backward will not assign: everywhere when windows overlap (backward
        accumulates) or leave gaps, else only the border that no window covers."""
        ph, pw = self.pool_size
        if self.stride == self.pool_size:
            dx[:, :, geo.out_height * ph :] = 0
            dx[:, :, :, geo.out_width * pw :] = 0
        else:
            dx.fill(0)

    def _scatter(self, parts: Any, dx: np.ndarray, geo: ConvGeometry) -> None:
        """Add parts[k] (batch, C, OH, OW) onto window offset k of dx (batch, C, H, W)."""
        self._clear_uncovered(dx, geo)
        for part, dx_view in zip(parts, functional.window_views(dx, geo), strict=True):
            if self.disjoint:
                np.copyto(dx_view, part)
            else:
                dx_view += part

    def config(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "pool_size": list(self.pool_size),
            "stride": list(self.stride),
        }


class MaxPool2D(Pool2D):
    """y[n, c, oh, ow] = max over the window x[n, c, sh*oh : sh*oh + ph, sw*ow : sw*ow + pw].

    Backward routes each output's gradient to exactly one input: the first maximum of its
    window in row-major order, even with ties.

    In training, forward first copies the window views into one contiguous (ph*pw, batch, C,
    OH, OW) array, so that the reduction here and the routing in backward run over contiguous
    memory; backward then scatters the routed gradients back onto the windows.
    """

    type_name = "maxpool2d"

    def __init__(
        self, pool_size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__(pool_size, stride)
        self._y: np.ndarray | None = None
        self._windows: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        """x: (batch, C, H, W) -> (batch, C, OH, OW)."""
        geo = self._geometry(x.shape)
        y = self._output(geo)
        views = functional.window_views(x, geo)
        self._windows = None
        if training:
            self._windows = self._gather(views, y.shape)
            views = list(self._windows)
        _reduce(np.maximum, views, y)
        self._x, self._y = x, y
        return y

    def _gather(self, views: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        """The window views copied into one contiguous (ph*pw, batch, C, OH, OW) array."""
        windows = self._buffer("windows", (len(views), *shape))
        for window, view in zip(windows, views, strict=True):
            np.copyto(window, view)
        return windows

    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True) -> np.ndarray | None:
        """dout: (batch, C, OH, OW) -> dx: (batch, C, H, W)."""
        if not need_input_grad:
            return None
        x, y = self._x, self._y
        if x is None or y is None:
            raise RuntimeError("backward called before forward")
        geo = self._geometry(x.shape)
        windows = self._windows
        if windows is None:  # the last forward ran in inference mode
            windows = self._gather(functional.window_views(x, geo), y.shape)
        rest = self._buffer("rest", y.shape)
        np.copyto(rest, dout)
        routed = self._buffer("routed", windows.shape)
        winner = self._buffers.get("winner", y.shape, np.dtype(np.bool_))
        _route(windows, y, rest, winner, routed)
        dx = self._input_grad(geo)
        self._scatter(routed, dx, geo)
        return dx


class AvgPool2D(Pool2D):
    """y[n, c, oh, ow] = mean of the window x[n, c, sh*oh : sh*oh + ph, sw*ow : sw*ow + pw].

    Backward spreads each output's gradient evenly over its window: dx += dout / (ph*pw).
    """

    type_name = "avgpool2d"

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        """x: (batch, C, H, W) -> (batch, C, OH, OW)."""
        geo = self._geometry(x.shape)
        y = self._output(geo)
        _reduce(np.add, functional.window_views(x, geo), y)
        y *= self.dtype.type(1.0 / (geo.kernel[0] * geo.kernel[1]))
        self._x = x
        return y

    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True) -> np.ndarray | None:
        """dout: (batch, C, OH, OW) -> dx: (batch, C, H, W)."""
        if not need_input_grad:
            return None
        if self._x is None:
            raise RuntimeError("backward called before forward")
        geo = self._geometry(self._x.shape)
        count = geo.kernel[0] * geo.kernel[1]
        share = np.multiply(
            dout, self.dtype.type(1.0 / count), out=self._buffer("share", dout.shape)
        )
        dx = self._input_grad(geo)
        self._scatter([share] * count, dx, geo)
        return dx


def _reduce(op: np.ufunc, views: list[np.ndarray], out: np.ndarray) -> None:
    """out = op(...op(op(views[0], views[1]), views[2])...), written into out."""
    if len(views) == 1:
        np.copyto(out, views[0])
        return
    op(views[0], views[1], out=out)
    for view in views[2:]:
        op(out, view, out=out)


def _route(
    candidates: np.ndarray, best: np.ndarray, grad: np.ndarray, won: np.ndarray, out: np.ndarray
) -> None:
    """out[k] = grad where candidates[k] is the first candidate equal to best, else 0.

    The whole gradient is offered to each candidate in turn: the first one holding the
    maximum takes it, and what is left (exactly zero) goes on. Overwrites grad; won is scratch.
    """
    last = len(candidates) - 1
    for k in range(last):
        np.equal(candidates[k], best, out=won)
        np.multiply(grad, won, out=out[k])
        np.subtract(grad, out[k], out=grad)
    np.copyto(out[last], grad)
