"""2-D convolution over NCHW images: y = activation(conv(x, W) + b)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional, validation
from ..errors import SpecError
from ..functional import ConvGeometry
from .base import Shape
from .weighted import WeightedLayer

_CHUNK_COLUMNS = 4096
_SKINNY_OUTPUT = 8192  # dW entries below which one long product runs far below BLAS speed
_INFERENCE_CHUNK_ELEMENTS = 1 << 22  # im2col entries per inference chunk (16 MiB in float32)
_ZEROED_PER_NAME = 3


def _chunk_count(batch: int, length: int, outputs: int) -> int:
    """How many chunks of whole images (a divisor of batch) the weight gradient is summed over.

    One product with a small output (filters x rows, e.g. 32 x 10 for a first layer) over a
    long inner dimension (batch*L) runs several times below BLAS speed; a batch of products
    over <= _CHUNK_COLUMNS columns each does not. Larger outputs use one product.
    """
    if outputs >= _SKINNY_OUTPUT:
        return 1
    for chunks in range(1, batch + 1):
        if batch % chunks == 0 and (batch // chunks) * length <= _CHUNK_COLUMNS:
            return chunks
    return batch


class Conv2D(WeightedLayer):
    """y[n, f, oh, ow] = activation(b[f] + sum_cij W[f, c, i, j] * xp[n, c, sh*oh + i, sw*ow + j]).

    x: (batch, C, H, W) -> y: (batch, filters, OH, OW); W: (filters, C, kh, kw) (PyTorch's
    layout), b: (filters,); xp is x zero-padded as `padding` says ("valid", "same" or an int).
    `max_norm` c, when set, rescales each filter's weight vector W[f] to norm <= c after every
    update.

    Computed with im2col (see functional.py): z = [W | b] @ [cols; 1] is one matrix product,
    the activation runs over z in place and y is a strided view of z. Backward: dz = dy *
    activation'(z) in the same layout, [dW | db] = dz @ [cols; 1].T, dcols = W.T @ dz and
    dx = col2im(dcols), for stride 1 from the plane layout.
    """

    type_name = "conv2d"
    unit_axes = (1, 2, 3)

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
        super().__init__(activation=activation, alpha=alpha,
                         kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, max_norm=max_norm, use_bias=use_bias)
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
        self._pads: functional.Padding = (0, 0, 0, 0)
        self._geometries: dict[tuple[int, ...], ConvGeometry] = {}
        self._zeroed_buffers: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
        self._x_shape: tuple[int, ...] | None = None
        self._geo: ConvGeometry | None = None
        self._cols: np.ndarray | None = None
        self._z: np.ndarray | None = None
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
        self._add_weight_and_bias((self.filters, channels, kh, kw), self.filters,
                                  fan_in=fan_in, fan_out=fan_out, rng=rng)
        return (self.filters, out_height, out_width)

    def _geometry(self, padded_shape: tuple[int, ...]) -> ConvGeometry:
        geo = self._geometries.get(padded_shape)
        if geo is None:
            geo = ConvGeometry.of(padded_shape, self.kernel_size, self.stride)
            self._geometries[padded_shape] = geo
        return geo

    def forward(self, x: np.ndarray, *, training: bool, activate: bool = True) -> np.ndarray:
        """x: (batch, C, H, W) -> (batch, filters, OH, OW). `activate=False` returns conv + b.

        The result is a layer buffer, in training a strided view of the (filters, batch*L)
        product (see functional.py) rather than a C-contiguous array. Inference on a large
        batch runs in chunks of images, so that the im2col matrix stays small.
        """
        n, c, h, w = x.shape
        top, bottom, left, right = self._pads
        geo = self._geometry((n, c, h + top + bottom, w + left + right))
        chunk = max(1, _INFERENCE_CHUNK_ELEMENTS // (geo.cols_shape[0] * geo.length))
        if training or n <= chunk:
            return self._forward(x, activate)
        y = self._buffer("y", (n, self.filters, geo.out_height, geo.out_width))
        for start in range(0, n, chunk):
            np.copyto(y[start : start + chunk], self._forward(x[start : start + chunk], activate))
        self._geo = None  # no backward through a chunked forward
        return y

    def _forward(self, x: np.ndarray, activate: bool) -> np.ndarray:
        self._x_shape = x.shape
        if any(self._pads):
            n, c, h, w = x.shape
            top, bottom, left, right = self._pads
            padded = self._buffer("xpad", (n, c, h + top + bottom, w + left + right))
            x = functional.pad_images(x, self._pads, padded)
        geo = self._geometry(x.shape)
        taps, columns = geo.cols_shape
        cols = self._buffer("cols", (taps + self.use_bias, columns))
        functional.im2col(x, geo, cols[:taps])
        z = np.matmul(self._kernel(cols), cols, out=self._buffer("z", (self.filters, columns)))
        y = functional.cols_to_image(z, geo)
        if activate:
            self._activate(z, y)
        self._geo, self._cols, self._z, self._y = geo, cols, z, y
        return y

    def _kernel(self, cols: np.ndarray) -> np.ndarray:
        """The (filters, taps) weight matrix; with a bias, [W | b] against cols' row of ones."""
        taps = cols.shape[0] - self.use_bias
        weight = self.params["weight"].reshape(self.filters, taps)
        if not self.use_bias:
            return weight
        cols[taps] = 1
        kernel = self._buffer("kernel", (self.filters, taps + 1))
        kernel[:, :taps] = weight
        kernel[:, taps] = self.params["bias"]
        return kernel

    def backward(
        self, dout: np.ndarray, *, need_input_grad: bool = True, activated: bool = True
    ) -> np.ndarray | None:
        """dout: (batch, filters, OH, OW) -> dx: (batch, C, H, W); fills grads.

        `activated=False` treats dout as the gradient of conv + b (fused softmax losses, or a
        max-pooling that applied the activation's derivative). A dout already in this layer's
        column layout (`functional.columns_of`: a max-pooling's input gradient for this
        layer's output) is used in place; its junk columns must be zero, as a pooling's are.
        dx is a strided view of a layer buffer.
        """
        geo, cols, z, y = self._geo, self._cols, self._z, self._y
        if geo is None or cols is None or z is None or y is None or self._x_shape is None:
            raise RuntimeError("backward called before forward")
        shape = (self.filters, cols.shape[1])
        # dz has zeros in its junk columns: the buffers are created zeroed and their junk
        # columns are never written.
        if not activated or self.activation.name != "softmax":
            # Elementwise derivatives run over whole contiguous buffers in the column layout.
            dz = functional.columns_of(dout, geo)
            if dz is None:
                dz = functional.image_to_cols(dout, geo, self._zeroed("dout", shape))
            if activated:
                dz = self.activation.backward(dz, z, self._zeroed("dz", shape))
        else:  # softmax couples the channels: work on the image view
            dz = self._zeroed("dz", shape)
            target = functional.cols_to_image(dz, geo)
            result = self.activation.backward(dout, y, target)
            if result is not target:
                np.copyto(target, result)
        planes = need_input_grad and geo.stride == (1, 1)
        if planes:
            dz_planes = functional.cols_to_planes(
                dz, geo, self._zeroed("dz_planes", (self.filters, geo.batch * geo.plane))
            )
        self._parameter_grads(dz, cols, geo)
        if not need_input_grad:
            return None
        weight = self.params["weight"].reshape(self.filters, -1)
        if planes:
            dcols = np.matmul(
                weight.T,
                dz_planes,
                out=self._buffer("dcols", (weight.shape[1], dz_planes.shape[1])),
            )
            scratch = self._buffer("dx", (geo.channels, geo.batch * geo.plane + geo.max_offset))
            dx = functional.col2im_planes(dcols, geo, scratch)
        else:
            dcols = np.matmul(weight.T, dz, out=self._buffer("dcols", (weight.shape[1], shape[1])))
            padded = (geo.batch, geo.channels, geo.height, geo.width)
            dx = functional.col2im(dcols, geo, self._buffer("dx", padded))
        return functional.crop_images(dx, self._pads) if any(self._pads) else dx

    def _activate(self, z: np.ndarray, y: np.ndarray) -> None:
        """y = activation(z) in place. Elementwise activations run over the whole contiguous
        (filters, batch*L) buffer, junk columns too."""
        if self.activation.name == "softmax":  # over the channel axis of the image view
            self.activation.forward(y, y)
        else:
            self.activation.forward(z, z)

    def _parameter_grads(self, dz: np.ndarray, cols: np.ndarray, geo: ConvGeometry) -> None:
        """[dW | db].T = [cols; 1] @ dz.T, as a sum over chunks of whole images (_chunk_count)."""
        rows, columns = cols.shape
        chunks = _chunk_count(geo.batch, geo.length, rows * self.filters)
        size = columns // chunks
        partial = self._buffer("kernel_grads", (chunks, rows, self.filters))
        np.matmul(
            cols.reshape(rows, chunks, size).transpose(1, 0, 2),
            dz.reshape(self.filters, chunks, size).transpose(1, 2, 0),
            out=partial,
        )
        grads = partial[0] if chunks == 1 else np.sum(partial, axis=0, out=partial[0])
        taps = rows - self.use_bias
        np.copyto(self.grads["weight"].reshape(self.filters, taps), grads[:taps].T)
        if self.use_bias:
            np.copyto(self.grads["bias"], grads[taps])

    def _zeroed(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A buffer that was all zeros when created (callers keep some entries at zero)."""
        key = (name, shape)
        array = self._zeroed_buffers.get(key)
        if array is None:
            same_name = [k for k in self._zeroed_buffers if k[0] == name]
            if len(same_name) >= _ZEROED_PER_NAME:
                del self._zeroed_buffers[same_name[0]]
            array = np.zeros(shape, dtype=self.dtype)
            self._zeroed_buffers[key] = array
        return array

    def config(self) -> dict[str, Any]:
        return {"type": "conv2d", "filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": self.padding,
                **self._weighted_config()}
