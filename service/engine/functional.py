"""Stateless maths for the image layers: padding rules, output sizes, im2col and col2im.

Images are NCHW: x has shape (batch, channels, height, width).

im2col lays the receptive fields out as the columns of one matrix, so a convolution is one
matrix product:

    cols: (C*kh*kw, N*L)        rows ordered (c, i, j), like weight.reshape(F, C*kh*kw)
    z = weight.reshape(F, -1) @ cols                                  # (F, N*L)

Each image owns L consecutive columns, and output pixel (oh, ow) of image n sits in column
n*L + oh*R + ow, where R is the distance between two output rows (`ConvGeometry.row`):

* stride (1, 1): R = padded width and L = (OH - 1)*R + OW. Column q of an image then reads
  the flat input plane at q + i*W + j, so building cols copies long contiguous runs. The
  R - OW columns at the end of every output row but the last are junk (they straddle two input
  rows); the product computes them and the layers ignore them.
* any other stride: R = OW and L = OH*OW, no junk columns.

`cols_to_image` and `image_to_cols` move between that layout and NCHW.

For stride (1, 1) the backward pass also uses the *plane layout* (F, N*P), P = H*W: image n
owns P columns and output pixel (oh, ow) sits at n*P + oh*W + ow, the position of its kernel's
top-left input pixel. The columns that are not output pixels hold zeros, so col2im becomes
kh*kw shifted additions of whole (C, N*P) slabs (`col2im_planes`), with no per-row loops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]  # (top, bottom, left, right)


def resolve_padding(padding: str | int, size: Pair, kernel: Pair, stride: Pair) -> Padding:
    """The zero padding (top, bottom, left, right) that `padding` asks for.

    "valid": none. int p: p on every side. "same": TensorFlow's rule, the output has
    ceil(in / stride) pixels per axis (so stride 1 keeps H and W) and, when the total padding
    is odd, the extra pixel goes to the bottom/right.
    """
    if padding == "valid":
        return (0, 0, 0, 0)
    if isinstance(padding, int) and not isinstance(padding, bool):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        return (padding, padding, padding, padding)
    if padding != "same":
        raise ValueError(f"padding must be 'valid', 'same' or an int >= 0, got {padding!r}")
    pads = []
    for n, k, s in zip(size, kernel, stride, strict=True):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return (pads[0], pads[1], pads[2], pads[3])


def conv_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output length along one axis: floor((size + padding - kernel) / stride) + 1.

    `padding` is the total over both ends. The result is <= 0 when the kernel does not fit.
    """
    return (size + padding - kernel) // stride + 1


def pool_output_size(size: int, pool: int, stride: int) -> int:
    """Output length of "valid" pooling along one axis: floor((size - pool) / stride) + 1."""
    return conv_output_size(size, pool, stride)


def pad_images(x: np.ndarray, padding: Padding, out: np.ndarray) -> np.ndarray:
    """x: (N, C, H, W) -> out: (N, C, H + top + bottom, W + left + right), zeros around x."""
    top, bottom, left, right = padding
    height, width = out.shape[2], out.shape[3]
    out[:, :, :top] = 0
    out[:, :, height - bottom :] = 0
    out[:, :, top : height - bottom, :left] = 0
    out[:, :, top : height - bottom, width - right :] = 0
    out[:, :, top : height - bottom, left : width - right] = x
    return out


def crop_images(x: np.ndarray, padding: Padding) -> np.ndarray:
    """The inverse of `pad_images`: a view of x without the padded border."""
    top, bottom, left, right = padding
    return x[:, :, top : x.shape[2] - bottom, left : x.shape[3] - right]


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of one convolution (or pooling) over a padded batch, and its column layout.

    batch, channels, height, width: the (already padded) input; out_height, out_width: the
    output; row, length: R and L of the module docstring.
    """

    batch: int
    channels: int
    height: int
    width: int
    kernel: Pair
    stride: Pair
    out_height: int
    out_width: int
    row: int
    length: int

    @classmethod
    def of(cls, input_shape: tuple[int, ...], kernel: Pair, stride: Pair) -> ConvGeometry:
        """The geometry for a padded input of shape (N, C, H, W)."""
        n, c, h, w = input_shape
        oh = conv_output_size(h, kernel[0], stride[0])
        ow = conv_output_size(w, kernel[1], stride[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"kernel {kernel} does not fit an input of {h}x{w}")
        if stride == (1, 1):
            row, length = w, (oh - 1) * w + ow
        else:
            row, length = ow, oh * ow
        return cls(n, c, h, w, kernel, stride, oh, ow, row, length)

    @property
    def cols_shape(self) -> tuple[int, int]:
        """(C*kh*kw, N*L)."""
        return (self.channels * self.kernel[0] * self.kernel[1], self.batch * self.length)

    @property
    def plane(self) -> int:
        """P = H*W, the columns per image in the plane layout."""
        return self.height * self.width

    @property
    def max_offset(self) -> int:
        """How far the last kernel offset reaches into a flat plane: (kh - 1)*W + kw - 1."""
        return (self.kernel[0] - 1) * self.width + self.kernel[1] - 1

    @property
    def has_junk(self) -> bool:
        return self.row != self.out_width and self.out_height > 1

    def offsets(self) -> list[tuple[int, int]]:
        """The kernel offsets (i, j) in row-major order, the order of cols' rows within c."""
        return [(i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1])]


def _strided(
    array: np.ndarray, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]
) -> np.ndarray:
    """A view of the contiguous `array` starting `offset` elements in; strides in elements."""
    if not array.flags.c_contiguous:
        raise ValueError("expected a C-contiguous array")
    flat = array.reshape(-1)[offset:]
    item = array.itemsize
    return as_strided(flat, shape=shape, strides=tuple(s * item for s in strides))


def _window(x: np.ndarray, i: int, j: int, geo: ConvGeometry) -> np.ndarray:
    """x[n, c, i + sh*oh, j + sw*ow] as an (N, C, OH, OW) view (x: (N, C, H, W))."""
    (sh, sw), oh, ow = geo.stride, geo.out_height, geo.out_width
    return x[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]


def im2col(x: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """x: (N, C, H, W), padded -> out: (C*kh*kw, N*L), the receptive fields as columns.

    out[(c, i, j), n*L + oh*R + ow] = x[n, c, i + sh*oh, j + sw*ow]. One copy per kernel
    offset, each moving a whole (C, N, ...) slab.
    """
    kh, kw = geo.kernel
    cols = out.reshape(geo.channels, kh * kw, geo.batch, geo.length)
    if geo.stride == (1, 1):
        planes = x.reshape(geo.batch, geo.channels, geo.height * geo.width)
        for k, (i, j) in enumerate(geo.offsets()):
            start = i * geo.width + j
            np.copyto(cols[:, k], planes[:, :, start : start + geo.length].transpose(1, 0, 2))
    else:
        grid = cols.reshape(geo.channels, kh * kw, geo.batch, geo.out_height, geo.out_width)
        for k, (i, j) in enumerate(geo.offsets()):
            np.copyto(grid[:, k], _window(x, i, j, geo).transpose(1, 0, 2, 3))
    return out


def col2im(cols: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """The adjoint of im2col: cols: (C*kh*kw, N*L) -> out: (N, C, H, W).

    Every column's entries are added back onto the input pixels they were copied from
    (overlapping windows sum). Junk columns must hold zeros: they are added to real pixels.
    """
    kh, kw = geo.kernel
    out.fill(0)
    blocks = cols.reshape(geo.channels, kh * kw, geo.batch, geo.length)
    if geo.stride == (1, 1):
        planes = out.reshape(geo.batch, geo.channels, geo.height * geo.width)
        for k, (i, j) in enumerate(geo.offsets()):
            start = i * geo.width + j
            planes[:, :, start : start + geo.length] += blocks[:, k].transpose(1, 0, 2)
    else:
        grid = blocks.reshape(geo.channels, kh * kw, geo.batch, geo.out_height, geo.out_width)
        for k, (i, j) in enumerate(geo.offsets()):
            _window(out, i, j, geo)[...] += grid[:, k].transpose(1, 0, 2, 3)
    return out


def cols_to_image(z: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """z: (F, N*L) in column layout -> an (N, F, OH, OW) view of it (junk columns skipped)."""
    f = z.shape[0]
    shape = (geo.batch, f, geo.out_height, geo.out_width)
    return _strided(z, 0, shape, (geo.length, geo.batch * geo.length, geo.row, 1))


def image_to_cols(image: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """image: (N, F, OH, OW) -> out: (F, N*L) in column layout; junk columns are not written."""
    np.copyto(cols_to_image(out, geo), image)
    return out


def columns_of(image: np.ndarray, geo: ConvGeometry) -> np.ndarray | None:
    """The (F, N*L) column-layout array that `image` (N, F, OH, OW) is a `cols_to_image` view
    of, when it is a view of a whole C-contiguous array in exactly that layout; else None.

    MaxPool2D.backward returns such views for a convolution's output (its input gradient laid
    out like its input), so the convolution's backward can skip `image_to_cols`.
    """
    base = image.base
    f = image.shape[1]
    if (not isinstance(base, np.ndarray) or base.dtype != image.dtype
            or base.size != f * geo.batch * geo.length or not base.flags.c_contiguous
            or image.shape != (geo.batch, f, geo.out_height, geo.out_width)
            or image.ctypes.data != base.ctypes.data):
        return None
    strides = tuple(s * image.itemsize for s in (geo.length, geo.batch * geo.length, geo.row, 1))
    return base.reshape(f, -1) if image.strides == strides else None


def zero_junk(z: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """Set the junk columns of z: (F, N*L) to zero (a no-op for layouts without junk)."""
    if geo.has_junk:
        f = z.shape[0]
        shape = (f, geo.batch, geo.out_height - 1, geo.row - geo.out_width)
        strides = (geo.batch * geo.length, geo.length, geo.row, 1)
        _strided(z, geo.out_width, shape, strides)[...] = 0
    return z


def window_views(x: np.ndarray, geo: ConvGeometry) -> list[np.ndarray]:
    """For pooling: one (N, C, OH, OW) view of x per window offset (i, j), row-major."""
    return [_window(x, i, j, geo) for i, j in geo.offsets()]


def cols_to_planes(z: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """z: (F, N*L) in column layout -> out: (F, N*P) in plane layout (stride 1 only).

    Each image's L columns become the first L columns of its plane; the last P - L columns
    of every plane are not written.
    """
    f = z.shape[0]
    target = out.reshape(f, geo.batch, geo.plane)[:, :, : geo.length]
    np.copyto(target, z.reshape(f, geo.batch, geo.length))
    return out


def col2im_planes(cols: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """col2im for stride (1, 1) from the plane layout.

    cols: (C*kh*kw, N*P) in plane layout, zero at every column that is not an output pixel;
    out: a (C, N*P + max_offset) scratch array. Returns dx as an (N, C, H, W) view of out.
    Column n*P + q, shifted by the kernel offset i*W + j, lands on input pixel q + i*W + j of
    image n; only zero columns spill past the end of a plane.
    """
    kh, kw = geo.kernel
    size = geo.batch * geo.plane
    blocks = cols.reshape(geo.channels, kh * kw, size)
    out[:, size:] = 0
    np.copyto(out[:, :size], blocks[:, 0])  # offset (0, 0)
    for k, (i, j) in enumerate(geo.offsets()[1:], start=1):
        start = i * geo.width + j
        target = out[:, start : start + size]
        np.add(target, blocks[:, k], out=target)
    images = out[:, :size].reshape(geo.channels, geo.batch, geo.height, geo.width)
    return images.transpose(1, 0, 2, 3)
