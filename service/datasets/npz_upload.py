"""An uploaded .npz, read as hostile: a zip holding exactly x_train.npy, y_train.npy, x_test.npy
and y_test.npy.

Member names, declared sizes, compression ratios and each .npy header (dtype, shape) are
checked before any array data is decompressed; nothing is ever unpickled.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from service.engine.npz import MAX_HEADER_BYTES, read_npy, read_npy_header
from service.errors import ErrorDetail, InvalidInput

from .rules import MAX_LISTED, UploadLimits, invalid, preview
from .zips import check_member, open_zip

NPZ_MEMBERS = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy")

_MAX_ZIP_ENTRIES = 1_000
_NPY_PREFIX_BYTES = 6 + 2 + 4 + MAX_HEADER_BYTES  # magic, version, header length, header
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_X_NDIMS = (2, 4)
_MEMBER_READ_ERRORS = (
    zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
    ValueError, TypeError, struct.error,
)


@dataclass(frozen=True)
class _NpyHeader:
    """What an .npy member declares: the array's shape and dtype, where its data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    data_offset: int


def parse_npz(data: bytes, limits: UploadLimits) -> dict[str, np.ndarray]:
    """x_train (N, ...), y_train (N,), x_test, y_test: x as float32, y as int64; each member is
    checked from its declaration before it is read."""
    with _open_archive(data) as archive:
        members = _members(archive)
        _check_sizes(members, limits)
        headers = {key: _read_header(archive, info) for key, info in members.items()}
        for key, header in headers.items():
            _check_header(key, header, members[key], limits)
        _check_shapes(headers, limits)
        loaded = {key: _read_array(archive, info) for key, info in members.items()}
    return {key: (_features(value, key) if key.startswith("x") else _labels(value, key, limits))
            for key, value in loaded.items()}


def _open_archive(data: bytes) -> zipfile.ZipFile:
    return open_zip(data, max_entries=_MAX_ZIP_ENTRIES,
                    expected=f"an .npz written by numpy.savez or numpy.savez_compressed: the "
                    f"{len(NPZ_MEMBERS)} members " + ", ".join(NPZ_MEMBERS))


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The four members by array name ("x_train", ...); anything else in the archive is refused."""
    expected = "exactly the members " + ", ".join(NPZ_MEMBERS)
    infos = archive.infolist()
    counts = Counter(info.filename for info in infos)
    details = []
    for member, count in counts.items():
        if member.endswith("/"):
            details.append(ErrorDetail("file", f"unexpected directory {preview(member)!r}",
                                       type="unexpected", expected=expected, received=member))
        elif member not in NPZ_MEMBERS:
            details.append(ErrorDetail("file", f"unexpected member {preview(member)!r}",
                                       type="unexpected", expected=expected, received=member))
        elif count > 1:
            details.append(ErrorDetail("file", f"duplicate member {member!r}", type="duplicate",
                                       expected=expected, received=f"{count} copies"))
    for member in NPZ_MEMBERS:
        if member not in counts:
            details.append(ErrorDetail("file", f"missing member {member!r}", type="missing",
                                       expected=expected, received=sorted(counts)[:MAX_LISTED]))
    if details:
        raise InvalidInput("the archive does not hold exactly x_train.npy, y_train.npy, "
                           "x_test.npy and y_test.npy", details[:MAX_LISTED])
    return {info.filename.removesuffix(".npy"): info for info in infos}


def _check_sizes(members: dict[str, zipfile.ZipInfo], limits: UploadLimits) -> None:
    """Refuse from the declared sizes alone what would decompress to too much."""
    for key, info in members.items():
        check_member(info, f"file.{key}", max_bytes=limits.max_uncompressed_bytes,
                     max_compression_ratio=limits.max_compression_ratio)
    total = sum(info.file_size for info in members.values())
    if total > limits.max_uncompressed_bytes:
        raise invalid("file", "the archive is too large uncompressed", type="limit",
                      expected=f"at most {limits.max_uncompressed_bytes} bytes in all",
                      received=f"{total} bytes")


@contextmanager
def _reading(path: str) -> Iterator[None]:
    try:
        yield
    except _MEMBER_READ_ERRORS as error:
        raise invalid(path, "the member is not a readable .npy array",
                      expected="an array written by numpy.save",
                      received=preview(f"{type(error).__name__}: {error}")) from None


def _read_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _NpyHeader:
    """The member's .npy header, decompressing at most the few KB it may occupy."""
    path = "file." + info.filename.removesuffix(".npy")
    with _reading(path):
        with archive.open(info) as stream:
            prefix = io.BytesIO(stream.read(min(info.file_size, _NPY_PREFIX_BYTES)))
        version = np.lib.format.read_magic(prefix)
        if version not in ((1, 0), (2, 0)):
            raise invalid(path, "unsupported .npy format version", expected="1.0 or 2.0",
                          received=f"{version[0]}.{version[1]}")
        prefix.seek(0)
    try:
        shape, _, dtype = read_npy_header(prefix)
    except Exception as error:  # numpy runs the header text through ast and tokenize
        raise invalid(path, "the .npy header cannot be parsed", expected="a header written "
                      "by numpy.save: {'descr': ..., 'fortran_order': ..., 'shape': ...}",
                      received=preview(f"{type(error).__name__}: {error}")) from None
    return _NpyHeader(tuple(shape), dtype, prefix.tell())


def _check_header(key: str, header: _NpyHeader, info: zipfile.ZipInfo,
                  limits: UploadLimits) -> None:
    """dtype, rank and size of one member, from its header and declared size alone."""
    path, dtype, shape = f"file.{key}", header.dtype, header.shape
    if dtype.kind not in _NUMERIC_KINDS or dtype.names is not None or dtype.subdtype is not None:
        raise invalid(path, "unsupported dtype", expected="a numeric or boolean dtype "
                      "(bool, int*, uint*, float*)", received=preview(str(dtype)))
    is_x = key.startswith("x")
    ndims = _X_NDIMS if is_x else (1,)
    if len(shape) not in ndims:
        wanted = "(N, F) or (N, C, H, W)" if is_x else "(N,), one label per row"
        raise invalid(path, f"{key} has the wrong number of dimensions",
                      expected=f"shape {wanted}", received=list(shape))
    if any(size < 0 for size in shape):
        raise invalid(path, "negative dimension", expected="sizes >= 0",
                      received=list(shape))
    if shape[0] < 1:
        raise invalid(path, f"{key} is empty", expected="at least one row", received=0)
    if shape[0] > limits.max_rows:
        raise invalid(path, f"{key} has too many rows", type="limit",
                      expected=f"at most {limits.max_rows} rows", received=shape[0])
    n_features = math.prod(shape[1:])
    if is_x and not 1 <= n_features <= limits.max_features:
        raise invalid(path, f"{key} has too many or no features per sample", type="limit",
                      expected=f"between 1 and {limits.max_features} values per sample",
                      received=f"{n_features} (shape {list(shape)})")
    declared = header.data_offset + math.prod(shape) * dtype.itemsize
    if declared != info.file_size:
        raise invalid(path, f"{key}'s header does not match its size",
                      expected=f"{declared} bytes for shape {list(shape)} of {dtype}",
                      received=f"{info.file_size} bytes")


def _check_shapes(headers: dict[str, _NpyHeader], limits: UploadLimits) -> None:
    for split in ("train", "test"):
        rows, labels = headers[f"x_{split}"].shape[0], headers[f"y_{split}"].shape[0]
        if rows != labels:
            raise invalid(f"file.y_{split}", f"y_{split} and x_{split} differ in rows",
                          expected=f"one label in y_{split} per row of x_{split} ({rows})",
                          received=f"{labels} labels")
    train, test = headers["x_train"].shape, headers["x_test"].shape
    if train[1:] != test[1:]:
        raise invalid("file.x_test", "x_test's samples differ in shape from x_train's",
                      expected=f"samples of shape {list(train[1:])}",
                      received=list(test[1:]))
    if train[0] + test[0] > limits.max_rows:
        raise invalid("file", "x_train and x_test hold too many rows", type="limit",
                      expected=f"at most {limits.max_rows} rows in all",
                      received=train[0] + test[0])


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with _reading("file." + info.filename.removesuffix(".npy")), archive.open(info) as stream:
        return read_npy(stream)


def _features(values: np.ndarray, key: str) -> np.ndarray:
    """values as C-ordered float32; NaN, inf and values beyond float32's range are refused."""
    with np.errstate(over="ignore", invalid="ignore"):
        x = values.astype(np.float32, order="C")
    finite = np.isfinite(x)
    if not finite.all():
        first = np.unravel_index(int(np.argmin(finite)), x.shape)
        index = ", ".join(str(int(i)) for i in first)
        bad = finite.size - int(np.count_nonzero(finite))
        raise invalid(f"file.{key}", f"{key} holds {bad} non-finite values", type="not_finite",
                      expected="finite numbers within the float32 range",
                      received=f"{bad} NaN, infinite or out-of-range values, the first "
                      f"{key}[{index}] = {float(values[first])!r}")
    return x


def _labels(values: np.ndarray, key: str, limits: UploadLimits) -> np.ndarray:
    """values as int64 class indices in [0, max_classes)."""
    expected = f"integer labels in [0, {limits.max_classes})"
    checks = []
    if values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            checks.append(("are not whole numbers", ~np.isfinite(values) | (values % 1 != 0)))
    checks.append(("are negative", values < 0))
    checks.append((f"are {limits.max_classes} or more", values >= limits.max_classes))
    for problem, bad in checks:
        if bad.any():
            first = int(np.argmax(bad))
            raise invalid(f"file.{key}", f"{int(np.count_nonzero(bad))} labels in {key} "
                          f"{problem}", expected=expected,
                          received=f"{key}[{first}] = {values[first].item()!r}")
    return values.astype(np.int64)

