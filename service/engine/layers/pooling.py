"""2-D max and average pooling over NCHW images ("valid": windows that do not fit are dropped)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import functional, validation
from ..errors import SpecError
from ..functional import ConvGeometry
from .base import Layer, Shape

if TYPE_CHECKING:
    from .activations import Activation


class Pool2D(Layer):
    """Shared shape rules: x: (batch, C, H, W) -> (batch, C, OH, OW),
    OH = floor((H - ph) / sh) + 1 and likewise OW.

    Both poolings loop over the ph*pw window offsets, each a strided (batch, C, OH, OW) view of
    the input. When windows do not overlap (stride >= pool_size, e.g. the default stride ==
    pool_size) every input pixel lies in at most one window, and average pooling's backward
    assigns the gradient views instead of accumulating into them (zeroing only the uncovered
    border when the windows tile the input).
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

    In training, forward also records each output's winning window position
    (`_winner_positions`); backward turns them into element offsets in x's own memory layout
    and scatters the gradient onto them in one indexed assignment, into a zeroed buffer laid
    out like x (so that a convolution's column layout survives: see Conv2D.backward). With
    `activation`, the elementwise activation that produced x, backward also applies its
    derivative: every winner's activation output is the pooled maximum y, so act'(y) * dout
    on the (ph*pw times smaller) output is the gradient of the activation's input at the
    winners, and zero elsewhere.
    """

    type_name = "maxpool2d"

    def __init__(
        self, pool_size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__(pool_size, stride)
        self._y: np.ndarray | None = None
        self._winners: np.ndarray | None = None
        self._layouts: dict[tuple[tuple[int, ...], tuple[int, ...]], _WinnerLayout] = {}

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        """x: (batch, C, H, W) -> (batch, C, OH, OW)."""
        geo = self._geometry(x.shape)
        y = self._output(geo)
        views = functional.window_views(x, geo)
        self._winners = self._winner_positions(views, y) if training else None
        if not training:
            _reduce(np.maximum, views, y)
        self._x, self._y = x, y
        return y

    def freeze(self) -> None:
        """Inference-only: the winners and their layouts go with the training buffers."""
        super().freeze()
        self._winners = None
        self._layouts.clear()

    def _layout(self, x: np.ndarray) -> _WinnerLayout:
        key = (x.shape, x.strides)
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) >= _LAYOUTS_KEPT:
                del self._layouts[next(iter(self._layouts))]
            layout = self._layouts[key] = _WinnerLayout.of(x, self._geometry(x.shape))
        return layout

    def _winner_positions(self, views: list[np.ndarray], y: np.ndarray) -> np.ndarray:
        """y = the window maxima; returns (batch, C, OH, OW) uint8: each output's winning
        window position k (row-major over the ph*pw offsets).

        The window views are first copied into one contiguous (ph*pw, batch, C, OH, OW)
        array, so that the comparisons run over contiguous memory. A later position wins
        only when strictly greater than the maximum so far, so ties go to the first; and as
        k grows, position = max(position, k * [window k wins]) needs no masked write.
        """
        windows = self._buffer("windows", (len(views), *y.shape))
        for window, view in zip(windows, views, strict=True):
            np.copyto(window, view)
        position = self._buffers.get("position", y.shape, np.dtype(np.uint8))
        better = self._buffers.get("better", y.shape, np.dtype(np.bool_))
        candidate = self._buffers.get("candidate", y.shape, np.dtype(np.uint8))
        np.copyto(y, windows[0])
        position.fill(0)
        for k in range(1, len(windows)):
            np.greater(windows[k], y, out=better)
            np.multiply(better.view(np.uint8), k, out=candidate)
            np.maximum(position, candidate, out=position)
            np.maximum(y, windows[k], out=y)
        return position

    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True,
                 activation: Activation | None = None) -> np.ndarray | None:
        """dout: (batch, C, OH, OW) -> dx: (batch, C, H, W), a view with x's strides.

        With `activation` (elementwise, the one that produced x), dx is the gradient of that
        activation's input instead (see the class docstring).
        """
        if not need_input_grad:
            return None
        x, y = self._x, self._y
        if x is None or y is None:
            raise RuntimeError("backward called before forward")
        winners = self._winners
        if winners is None:  # the last forward ran in inference mode
            winners = self._winners = self._winner_positions(
                functional.window_views(x, self._geometry(x.shape)), y)
        if activation is not None:
            dout = activation.backward(dout, y, self._buffer("dz", y.shape))
        layout = self._layout(x)
        offsets = self._buffers.get("offsets", y.shape, np.dtype(np.intp))
        np.take(layout.deltas, winners, out=offsets, mode="clip")  # "clip": the fast path
        np.add(offsets, layout.starts, out=offsets)
        target = self._buffer("dx_flat", (layout.span,))
        target.fill(0)
        if self.disjoint:  # every input pixel wins at most one window
            target[offsets.reshape(-1)] = dout.reshape(-1)
        else:
            np.add.at(target, offsets.reshape(-1), dout.reshape(-1))
        return np.ndarray(x.shape, self.dtype, buffer=target, strides=layout.strides)


_LAYOUTS_KEPT = 4


@dataclass(frozen=True)
class _WinnerLayout:
    """Where max-pooling winners sit in memory laid out like the input x (batch, C, H, W).

    strides: x's byte strides when they are positive and x's elements do not overlap, else
    C-contiguous ones; span: the elements such a buffer holds; starts: (batch, C, OH, OW)
    element offsets of every window's top-left pixel; deltas: (ph*pw,) the offset of each
    window position (i, j), row-major, from that pixel.
    """

    strides: tuple[int, ...]
    span: int
    starts: np.ndarray
    deltas: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, geo: ConvGeometry) -> _WinnerLayout:
        item = x.itemsize
        steps = [s // item for s in x.strides]
        if not _dense_layout(x.shape, x.strides, item):
            steps = [int(s) for s in np.cumprod((1, *x.shape[:0:-1]))[::-1]]
        (sh, sw), (oh, ow) = geo.stride, (geo.out_height, geo.out_width)
        n, c, rows, columns = steps
        starts = (np.arange(geo.batch)[:, None, None, None] * n
                  + np.arange(geo.channels)[None, :, None, None] * c
                  + np.arange(oh)[None, None, :, None] * (sh * rows)
                  + np.arange(ow)[None, None, None, :] * (sw * columns)).astype(np.intp)
        span = 1 + sum((size - 1) * step for size, step in zip(x.shape, steps, strict=True))
        deltas = np.array([i * rows + j * columns for i, j in geo.offsets()], dtype=np.intp)
        return cls(tuple(s * item for s in steps), span, starts, deltas)


def _dense_layout(shape: tuple[int, ...], strides: tuple[int, ...], item: int) -> bool:
    """Whether positive byte `strides` place every element of `shape` at its own address."""
    if any(s <= 0 or s % item for s in strides):
        return False
    reach = item
    for stride, size in sorted(zip(strides, shape, strict=True)):
        if stride < reach:
            return False
        reach += stride * (size - 1)
    return True


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
