"""2-D convolution over NCHW images: y = activation(conv(x, W) + b)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional, initializers, validation
from ..errors import SpecError
from ..functional import ConvGeometry
from .activations import get_activation
from .base import Layer, Shape


class Conv2D(Layer):
    """y[n, f, oh, ow] = activation(b[f] + sum_cij W[f, c, i, j] * xp[n, c, sh*oh + i, sw*ow + j]).

    x: (batch, C, H, W) -> y: (batch, filters, OH, OW); W: (filters, C, kh, kw) (PyTorch's
    layout), b: (filters,); xp is x zero-padded as `padding` says ("valid", "same" or an int).
    Computed as one matrix product with im2col (see functional.py): z = W.reshape(F, -1) @ cols,
    and in backward dW = dz @ cols.T, dcols = W.reshape(F, -1).T @ dz, dx = col2im(dcols).
    `max_norm` c, when set, rescales each filter's weight vector W[f] to norm <= c after every
    update.
    """

    type_name = "conv2d"

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int | tuple[int, int] = 1,
        padding: str | int = "valid",
        activation: str = "linear",
        alpha: float | None = None,
        kernel_initializer: str | None = None,
        bias_initializer: str = "zeros",
        max_norm: float | None = None,
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        self.filters = validation.integer(filters, "filters", minimum=1)
        self.kernel_size = validation.pair(kernel_size, "kernel_size", minimum=1)
        self.stride = validation.pair(stride, "stride", minimum=1)
        if isinstance(padding, str):
            self.padding: str | int = validation.choice(padding, "padding", ("valid", "same"))
        elif isinstance(padding, int) and not isinstance(padding, bool):
            self.padding = validation.integer(padding, "padding", minimum=0)
        else:
            raise SpecError(
                "invalid value",
                field="padding",
                expected="'valid', 'same' or an integer >= 0",
                received=padding,
            )
        if alpha is not None and activation != "leaky_relu":
            raise SpecError(
                "only leaky_relu takes alpha", field="alpha", expected="no alpha", received=alpha
            )
        self.activation = get_activation(activation, **({} if alpha is None else {"alpha": alpha}))
        self.kernel_initializer = validation.choice(
            kernel_initializer or initializers.default_for(activation),
            "kernel_initializer",
            initializers.INITIALIZERS,
        )
        self.bias_initializer = validation.choice(
            bias_initializer, "bias_initializer", initializers.INITIALIZERS
        )
        self.max_norm = (
            None
            if max_norm is None
            else validation.number(max_norm, "max_norm", exclusive_minimum=0.0)
        )
        if not isinstance(use_bias, bool):
            raise SpecError(
                "invalid value", field="use_bias", expected="a boolean", received=use_bias
            )
        self.use_bias = use_bias
        self._pads: functional.Padding = (0, 0, 0, 0)
        self._geometries: dict[tuple[int, ...], ConvGeometry] = {}
        self._x_shape: tuple[int, ...] | None = None
        self._geo: ConvGeometry | None = None
        self._cols: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(input_shape) != 3:
            raise SpecError(
                "conv2d needs image input (channels, height, width)",
                field="type",
                expected="an input of shape (C, H, W)",
                received=list(input_shape),
            )
        channels, height, width = input_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        self._pads = top, bottom, left, right = functional.resolve_padding(
            self.padding, (height, width), self.kernel_size, self.stride
        )
        out_height = functional.conv_output_size(height, kh, sh, top + bottom)
        out_width = functional.conv_output_size(width, kw, sw, left + right)
        if out_height < 1 or out_width < 1:
            raise SpecError(
                "conv2d output would be empty: the kernel is larger than the padded input",
                field="kernel_size",
                expected=f"a kernel no larger than the padded input "
                f"{height + top + bottom}x{width + left + right}",
                received=f"input {height}x{width}, kernel {kh}x{kw}, "
                f"padding {0 if self.padding == 'valid' else self.padding}",
            )
        fan_in, fan_out = channels * kh * kw, self.filters * kh * kw
        self.params["weight"] = initializers.initialize(
            self.kernel_initializer,
            (self.filters, channels, kh, kw),
            fan_in=fan_in,
            fan_out=fan_out,
            rng=rng,
            dtype=self.dtype,
        )
        if self.use_bias:
            self.params["bias"] = initializers.initialize(
                self.bias_initializer,
                (self.filters,),
                fan_in=fan_in,
                fan_out=fan_out,
                rng=rng,
                dtype=self.dtype,
            )
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        return (self.filters, out_height, out_width)

    def _geometry(self, padded_shape: tuple[int, ...]) -> ConvGeometry:
        geo = self._geometries.get(padded_shape)
        if geo is None:
            geo = ConvGeometry.of(padded_shape, self.kernel_size, self.stride)
            self._geometries[padded_shape] = geo
        return geo

    def forward(self, x: np.ndarray, *, training: bool, activate: bool = True) -> np.ndarray:
        """x: (batch, C, H, W) -> (batch, filters, OH, OW). `activate=False` returns conv + b."""
        self._x_shape = x.shape
        top, bottom, left, right = self._pads
        if any(self._pads):
            n, c, h, w = x.shape
            padded = self._buffer("xpad", (n, c, h + top + bottom, w + left + right))
            x = functional.pad_images(x, self._pads, padded)
        geo = self._geometry(x.shape)
        cols = functional.im2col(x, geo, self._buffer("cols", geo.cols_shape))
        weight = self.params["weight"].reshape(self.filters, -1)
        z = np.matmul(weight, cols, out=self._buffer("z", (self.filters, cols.shape[1])))
        y = self._buffer("y", (geo.batch, self.filters, geo.out_height, geo.out_width))
        if self.use_bias:
            np.add(functional.cols_to_image(z, geo), self.params["bias"][:, None, None], out=y)
        else:
            np.copyto(y, functional.cols_to_image(z, geo))
        self._geo, self._cols = geo, cols
        self._y = self.activation.forward(y, y) if activate else y
        return self._y

    def backward(
        self, dout: np.ndarray, *, need_input_grad: bool = True, activated: bool = True
    ) -> np.ndarray | None:
        """dout: (batch, filters, OH, OW) -> dx: (batch, C, H, W); fills grads.

        `activated=False` treats dout as the gradient of conv + b (fused softmax losses).
        """
        geo, cols, y = self._geo, self._cols, self._y
        if geo is None or cols is None or y is None or self._x_shape is None:
            raise RuntimeError("backward called before forward")
        dz = self._buffer("dz", (self.filters, cols.shape[1]))
        # The activation's derivative is written straight into the column layout.
        dz_image = functional.cols_to_image(dz, geo)
        result = self.activation.backward(dout, y, dz_image) if activated else dout
        if result is not dz_image:
            np.copyto(dz_image, result)
        functional.zero_junk(dz, geo)
        if self.use_bias:
            np.sum(dz, axis=1, out=self.grads["bias"])
        np.matmul(dz, cols.T, out=self.grads["weight"].reshape(self.filters, -1))
        if not need_input_grad:
            return None
        weight = self.params["weight"].reshape(self.filters, -1)
        dcols = np.matmul(weight.T, dz, out=self._buffer("dcols", cols.shape))
        dx = self._buffer("dx", self._x_shape)
        if not any(self._pads):
            return functional.col2im(dcols, geo, dx)
        padded = self._buffer("dxpad", (geo.batch, geo.channels, geo.height, geo.width))
        functional.col2im(dcols, geo, padded)
        np.copyto(dx, functional.crop_images(padded, self._pads))
        return dx

    def apply_constraints(self) -> None:
        if self.max_norm is None:
            return
        weight = self.params["weight"]
        norms = np.sqrt(np.sum(weight * weight, axis=(1, 2, 3)))
        scale = np.minimum(1.0, self.max_norm / np.maximum(norms, 1e-12)).astype(weight.dtype)
        weight *= scale[:, None, None, None]

    def config(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "type": "conv2d",
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding,
            "activation": self.activation.name,
            **self.activation.config(),
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "use_bias": self.use_bias,
        }
        if self.max_norm is not None:
            spec["max_norm"] = self.max_norm
        return spec
