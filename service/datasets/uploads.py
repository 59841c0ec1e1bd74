"""An uploaded file turned into a validated Dataset, every byte of it treated as hostile.

    .npz  a zip holding exactly x_train.npy, y_train.npy, x_test.npy and y_test.npy. Member
          names, declared sizes, compression ratios and each .npy header (dtype, shape) are
          checked before any array data is decompressed; nothing is ever unpickled.
    CSV   UTF-8 text with a header row; one column holds the labels ("label", else the last,
          or the one `label_column` names), every other column is a feature. The rows are
          split stratified into train and test.

x: (N, F) or (N, C, H, W) float32, all finite; y: (N,) int64 in [0, n_classes), where
n_classes = max label + 1. Every failure is an InvalidInput (422) whose detail `path` names
the culprit: "file", "file.x_train", "file.line 17", "label_column", "test_fraction",
"split_seed".
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import math
import struct
import zipfile
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.engine import validation
from service.engine.datasets import SPLIT_PARAMETERS, Dataset, train_test_split
from service.engine.errors import SpecError
from service.engine.npz import MAX_HEADER_BYTES, read_npy, read_npy_header
from service.errors import ErrorDetail, InvalidInput

log = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
NPZ_MEMBERS = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy")
MAX_NAME_CHARS = 200
DEFAULT_LABEL_COLUMN = "label"

# Members this small may compress as well as they like: they cannot expand to anything harmful,
# and a column of equal labels (all zeros) legitimately deflates a thousandfold.
_RATIO_EXEMPT_BYTES = 1 << 20
# Every central-directory entry zipfile parses starts with this signature, so its count in the
# upload bounds the ZipInfo objects (and memory) that opening the archive can cost.
_CENTRAL_DIRECTORY_SIGNATURE = b"PK\x01\x02"
_MAX_ZIP_ENTRIES = 1_000
_NPY_PREFIX_BYTES = 6 + 2 + 4 + MAX_HEADER_BYTES  # magic, version, header length, header
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_X_NDIMS = (2, 4)
_CSV_CHARS_PER_FIELD = 64  # average, over a whole line: bounds a line before csv splits it
_CSV_CHUNK_VALUES = 1 << 18
_UTF8_CHUNK_BYTES = 1 << 20
_PREVIEW_CHARS = 40
_MAX_LISTED = 10
_SPLIT_BOUNDS = {param["name"]: param for param in SPLIT_PARAMETERS}
_MEMBER_READ_ERRORS = (
    zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
    ValueError, TypeError, struct.error,
)


@dataclass(frozen=True)
class UploadLimits:
    """How much an upload may hold; anything beyond is refused before it is decompressed."""

    max_rows: int = 1_000_000  # train + test rows
    max_features: int = 100_000  # values per sample
    max_uncompressed_bytes: int = 512 * 1024 * 1024
    max_compression_ratio: float = 200.0
    max_classes: int = 10_000


@dataclass(frozen=True)
class ParsedUpload:
    """An accepted upload: x float32 finite, y int64 in [0, n_classes)."""

    dataset: Dataset
    source_format: str  # "npz" or "csv"


def parse_upload(
    filename: str,
    data: bytes,
    *,
    label_column: str | None = None,
    test_fraction: float = 0.25,
    split_seed: int = 0,
    name: str | None = None,
    limits: UploadLimits = UploadLimits(),  # frozen, so one shared default is safe
) -> ParsedUpload:
    """The dataset in `data`, told apart by content: a zip is an .npz, anything else a CSV.

    An .npz carries its own split; a CSV is split with `test_fraction` and `split_seed`
    (stratified, see service.engine.datasets.train_test_split), both checked for either
    format. `label_column` applies to CSV only. The dataset is named `name`, else `filename`.
    Raises InvalidInput (422) and nothing else.
    """
    try:
        _check_arguments(test_fraction, split_seed, label_column)
        data = bytes(data)
        if not data:
            raise _invalid("file", "the file is empty", expected="an .npz archive or a UTF-8 "
                           "CSV with a header row", received="0 bytes")
        if data.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
            if label_column is not None:
                raise _invalid("label_column", "label_column applies to CSV uploads only",
                               expected="no label_column with an .npz (y_train and y_test "
                               "hold its labels)", received=_preview(label_column))
            arrays, source_format = _parse_npz(data, limits), "npz"
        else:
            x, y = _parse_csv(data, label_column, limits)
            arrays, source_format = _split(x, y, test_fraction, split_seed), "csv"
        n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
        dataset = Dataset(**arrays, n_classes=n_classes,
                          name=(name or filename or "upload")[:MAX_NAME_CHARS])
    except InvalidInput:
        raise
    except MemoryError:
        raise _invalid("file", "the dataset is too large to process", type="limit",
                       expected="a smaller dataset", received=f"{len(data)} bytes") from None
    except Exception as error:
        # A failure no check anticipated: still the client's file at fault, never a 500.
        log.warning("upload %r could not be parsed", str(filename)[:MAX_NAME_CHARS],
                    exc_info=True)
        raise _invalid("file", "the file could not be read", expected="an .npz archive or a "
                       "UTF-8 CSV", received=type(error).__name__) from error
    return ParsedUpload(dataset=dataset, source_format=source_format)


# --- shared -------------------------------------------------------------------------------


def _invalid(path: str, message: str, *, expected: str | None = None, received: Any = None,
             type: str = "invalid") -> InvalidInput:
    return InvalidInput(message, [ErrorDetail(path, message, type=type, expected=expected,
                                              received=received)])


def _preview(text: str) -> str:
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."


def _check_arguments(test_fraction: Any, split_seed: Any, label_column: Any) -> None:
    fraction, seed = _SPLIT_BOUNDS["test_fraction"], _SPLIT_BOUNDS["split_seed"]
    try:
        validation.number(test_fraction, "test_fraction", minimum=fraction["minimum"],
                          maximum=fraction["maximum"])
        validation.integer(split_seed, "split_seed", minimum=seed["minimum"],
                           maximum=seed["maximum"])
    except SpecError as error:
        raise _invalid(str(error.field), error.message, expected=error.expected,
                       received=error.received) from None
    if label_column is not None and not isinstance(label_column, str):
        raise _invalid("label_column", "invalid value", expected="a column name (a string)",
                       received=repr(label_column))


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float,
           split_seed: int) -> dict[str, np.ndarray]:
    try:
        split = train_test_split(x, y, test_fraction=test_fraction, seed=split_seed)
    except SpecError as error:
        raise _invalid("test_fraction", error.message, expected=error.expected,
                       received=error.received) from None
    return split._asdict()


# --- .npz ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NpyHeader:
    """What an .npy member declares: the array's shape and dtype, where its data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    data_offset: int


def _parse_npz(data: bytes, limits: UploadLimits) -> dict[str, np.ndarray]:
    """x_train, y_train, x_test, y_test, each checked from its declaration before it is read."""
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
    entries = data.count(_CENTRAL_DIRECTORY_SIGNATURE)
    if entries > _MAX_ZIP_ENTRIES:
        raise _invalid("file", "the archive has too many entries", type="limit",
                       expected=f"the {len(NPZ_MEMBERS)} members " + ", ".join(NPZ_MEMBERS),
                       received=f"up to {entries} entries")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except Exception as error:  # zipfile fails in many ways on damaged directories
        raise _invalid("file", "not a readable zip archive", expected="an .npz written by "
                       "numpy.savez or numpy.savez_compressed",
                       received=_preview(f"{type(error).__name__}: {error}")) from None


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The four members by array name ("x_train", ...); anything else in the archive is refused."""
    expected = "exactly the members " + ", ".join(NPZ_MEMBERS)
    infos = archive.infolist()
    counts = Counter(info.filename for info in infos)
    details = []
    for member, count in counts.items():
        if member.endswith("/"):
            details.append(ErrorDetail("file", f"unexpected directory {_preview(member)!r}",
                                       type="unexpected", expected=expected, received=member))
        elif member not in NPZ_MEMBERS:
            details.append(ErrorDetail("file", f"unexpected member {_preview(member)!r}",
                                       type="unexpected", expected=expected, received=member))
        elif count > 1:
            details.append(ErrorDetail("file", f"duplicate member {member!r}", type="duplicate",
                                       expected=expected, received=f"{count} copies"))
    for member in NPZ_MEMBERS:
        if member not in counts:
            details.append(ErrorDetail("file", f"missing member {member!r}", type="missing",
                                       expected=expected, received=sorted(counts)[:_MAX_LISTED]))
    if details:
        raise InvalidInput("the archive does not hold exactly x_train.npy, y_train.npy, "
                           "x_test.npy and y_test.npy", details[:_MAX_LISTED])
    return {info.filename.removesuffix(".npy"): info for info in infos}


def _check_sizes(members: dict[str, zipfile.ZipInfo], limits: UploadLimits) -> None:
    """Refuse from the declared sizes alone what would decompress to too much."""
    for key, info in members.items():
        path = f"file.{key}"
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _invalid(path, "unsupported compression method", expected="stored or "
                           "deflated (as numpy.savez writes)", received=info.compress_type)
        if info.flag_bits & 0x1:
            raise _invalid(path, "the member is encrypted", expected="an unencrypted member",
                           received="encrypted")
        if info.file_size > limits.max_uncompressed_bytes:
            raise _invalid(path, "the member is too large uncompressed", type="limit",
                           expected=f"at most {limits.max_uncompressed_bytes} bytes",
                           received=f"{info.file_size} bytes")
        ratio = info.file_size / info.compress_size if info.compress_size else math.inf
        if info.file_size > _RATIO_EXEMPT_BYTES and ratio > limits.max_compression_ratio:
            raise _invalid(path, "the member is compressed suspiciously well", type="limit",
                           expected=f"a compression ratio of at most "
                           f"{limits.max_compression_ratio:g}",
                           received=f"{info.file_size} bytes from {info.compress_size}")
    total = sum(info.file_size for info in members.values())
    if total > limits.max_uncompressed_bytes:
        raise _invalid("file", "the archive is too large uncompressed", type="limit",
                       expected=f"at most {limits.max_uncompressed_bytes} bytes in all",
                       received=f"{total} bytes")


@contextmanager
def _reading(path: str) -> Iterator[None]:
    try:
        yield
    except _MEMBER_READ_ERRORS as error:
        raise _invalid(path, "the member is not a readable .npy array",
                       expected="an array written by numpy.save",
                       received=_preview(f"{type(error).__name__}: {error}")) from None


def _read_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _NpyHeader:
    """The member's .npy header, decompressing at most the few KB it may occupy."""
    path = "file." + info.filename.removesuffix(".npy")
    with _reading(path):
        with archive.open(info) as stream:
            prefix = io.BytesIO(stream.read(min(info.file_size, _NPY_PREFIX_BYTES)))
        version = np.lib.format.read_magic(prefix)
        if version not in ((1, 0), (2, 0)):
            raise _invalid(path, "unsupported .npy format version", expected="1.0 or 2.0",
                           received=f"{version[0]}.{version[1]}")
        prefix.seek(0)
    try:
        shape, _, dtype = read_npy_header(prefix)
    except Exception as error:  # numpy runs the header text through ast and tokenize
        raise _invalid(path, "the .npy header cannot be parsed", expected="a header written "
                       "by numpy.save: {'descr': ..., 'fortran_order': ..., 'shape': ...}",
                       received=_preview(f"{type(error).__name__}: {error}")) from None
    return _NpyHeader(tuple(shape), dtype, prefix.tell())


def _check_header(key: str, header: _NpyHeader, info: zipfile.ZipInfo,
                  limits: UploadLimits) -> None:
    """dtype, rank and size of one member, from its header and declared size alone."""
    path, dtype, shape = f"file.{key}", header.dtype, header.shape
    if dtype.kind not in _NUMERIC_KINDS or dtype.names is not None or dtype.subdtype is not None:
        raise _invalid(path, "unsupported dtype", expected="a numeric or boolean dtype "
                       "(bool, int*, uint*, float*)", received=_preview(str(dtype)))
    is_x = key.startswith("x")
    ndims = _X_NDIMS if is_x else (1,)
    if len(shape) not in ndims:
        wanted = "(N, F) or (N, C, H, W)" if is_x else "(N,), one label per row"
        raise _invalid(path, f"{key} has the wrong number of dimensions",
                       expected=f"shape {wanted}", received=list(shape))
    if any(size < 0 for size in shape):
        raise _invalid(path, "negative dimension", expected="sizes >= 0",
                       received=list(shape))
    if shape[0] < 1:
        raise _invalid(path, f"{key} is empty", expected="at least one row", received=0)
    if shape[0] > limits.max_rows:
        raise _invalid(path, f"{key} has too many rows", type="limit",
                       expected=f"at most {limits.max_rows} rows", received=shape[0])
    n_features = math.prod(shape[1:])
    if is_x and not 1 <= n_features <= limits.max_features:
        raise _invalid(path, f"{key} has too many or no features per sample", type="limit",
                       expected=f"between 1 and {limits.max_features} values per sample",
                       received=f"{n_features} (shape {list(shape)})")
    declared = header.data_offset + math.prod(shape) * dtype.itemsize
    if declared != info.file_size:
        raise _invalid(path, f"{key}'s header does not match its size",
                       expected=f"{declared} bytes for shape {list(shape)} of {dtype}",
                       received=f"{info.file_size} bytes")


def _check_shapes(headers: dict[str, _NpyHeader], limits: UploadLimits) -> None:
    for split in ("train", "test"):
        rows, labels = headers[f"x_{split}"].shape[0], headers[f"y_{split}"].shape[0]
        if rows != labels:
            raise _invalid(f"file.y_{split}", f"y_{split} and x_{split} differ in rows",
                           expected=f"one label in y_{split} per row of x_{split} ({rows})",
                           received=f"{labels} labels")
    train, test = headers["x_train"].shape, headers["x_test"].shape
    if train[1:] != test[1:]:
        raise _invalid("file.x_test", "x_test's samples differ in shape from x_train's",
                       expected=f"samples of shape {list(train[1:])}",
                       received=list(test[1:]))
    if train[0] + test[0] > limits.max_rows:
        raise _invalid("file", "x_train and x_test hold too many rows", type="limit",
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
        raise _invalid(f"file.{key}", f"{key} holds {bad} non-finite values", type="not_finite",
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
            raise _invalid(f"file.{key}", f"{int(np.count_nonzero(bad))} labels in {key} "
                           f"{problem}", expected=expected,
                           received=f"{key}[{first}] = {values[first].item()!r}")
    return values.astype(np.int64)


# --- CSV ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    """The header's column names and which one holds the labels."""

    names: list[str]
    label_index: int

    @property
    def label(self) -> str:
        return self.names[self.label_index]

    @property
    def features(self) -> list[str]:
        return self.names[: self.label_index] + self.names[self.label_index + 1 :]


class _Lines:
    """The text's lines for csv.reader: short enough to split safely, one record per line.

    Quoted fields spanning lines are refused, so that a record cannot grow past the limits
    line by line before csv hands it over.
    """

    def __init__(self, text: io.TextIOBase, *, max_chars: int, max_fields: int) -> None:
        self.text = text
        self.max_chars = max_chars
        self.max_fields = max_fields
        self.number = 0
        self.record_open = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.record_open:
            raise _invalid(f"file.line {self.number}", "a quoted field runs past the end of "
                           "the line", expected="one record per line, quotes closed on it",
                           received="an unclosed quote")
        line = self.text.readline(self.max_chars + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) > self.max_chars:
            raise _invalid(f"file.line {self.number}", "the line is too long", type="limit",
                           expected=f"at most {self.max_chars} characters",
                           received=f"more than {self.max_chars}")
        if line.count(",") >= self.max_fields:
            raise _invalid(f"file.line {self.number}", "the line has too many fields",
                           type="limit", expected=f"at most {self.max_fields} fields",
                           received=f"{line.count(',') + 1} fields")
        self.record_open = True
        return line


def _parse_csv(data: bytes, label_column: str | None,
               limits: UploadLimits) -> tuple[np.ndarray, np.ndarray]:
    """x (N, F) float32 and y (N,) int64 from a UTF-8 CSV, read one line at a time."""
    _check_text(data)
    records = _records(data, limits)
    first = next(records, None)
    if first is None:
        raise _invalid("file", "the CSV has no header row", expected="a header row naming the "
                       "columns, then one row per sample", received="only blank lines")
    columns = _columns(*first, label_column, limits)
    x, y = _read_rows(records, columns, limits)
    if len(y) == 0:
        raise _invalid("file", "the CSV has no data rows", expected="one row per sample after "
                       "the header", received="a header only")
    return x, y


def _check_text(data: bytes) -> None:
    """Refuse bytes that are not UTF-8 text, naming the first bad byte and its line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, len(data), _UTF8_CHUNK_BYTES):
        chunk = view[start : start + _UTF8_CHUNK_BYTES]
        try:
            decoder.decode(chunk, final=start + _UTF8_CHUNK_BYTES >= len(data))
        except UnicodeDecodeError as error:
            offset = start - len(decoder.getstate()[0]) + error.start
            raise _invalid("file", "the file is neither an .npz (zip) archive nor UTF-8 text",
                           expected="an .npz archive or a UTF-8 CSV",
                           received=f"byte 0x{data[offset]:02x} at offset {offset} "
                           f"(line {_line_at(data, offset)})") from None
    if b"\x00" in data:
        offset = data.index(b"\x00")
        raise _invalid("file", "the file holds NUL bytes", expected="CSV text",
                       received=f"NUL at offset {offset} (line {_line_at(data, offset)})")


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _records(data: bytes, limits: UploadLimits) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    max_fields = limits.max_features + 1
    lines = _Lines(text, max_chars=max_fields * _CSV_CHARS_PER_FIELD, max_fields=max_fields)
    reader = csv.reader(lines)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _invalid(f"file.line {lines.number}", "malformed CSV", expected="comma-"
                           "separated fields, quoted with \"", received=str(error)) from None
        lines.record_open = False
        if row:
            yield lines.number, row


def _columns(line: int, header: list[str], label_column: str | None,
             limits: UploadLimits) -> _Columns:
    path = f"file.line {line}"
    names = [name.strip() for name in header]
    if len(names) < 2:
        raise _invalid(path, "the header needs a feature and a label column",
                       expected="at least two comma-separated column names",
                       received=[_preview(name) for name in names])
    if len(names) - 1 > limits.max_features:
        raise _invalid(path, "too many feature columns", type="limit",
                       expected=f"at most {limits.max_features}", received=len(names) - 1)
    for index, column in enumerate(names):
        if not column:
            raise _invalid(path, f"header column {index + 1} has no name",
                           expected="a name for every column", received=header[index])
    duplicates = [column for column, count in Counter(names).items() if count > 1]
    if duplicates:
        raise _invalid(path, "duplicate column names", expected="distinct column names",
                       received=[_preview(column) for column in duplicates[:_MAX_LISTED]])
    if label_column is not None:
        if label_column.strip() not in names:
            raise _invalid("label_column", "no such column in the header",
                           expected="one of " + ", ".join(repr(_preview(n))
                                                          for n in names[:_MAX_LISTED])
                           + (", ..." if len(names) > _MAX_LISTED else ""),
                           received=_preview(label_column))
        return _Columns(names, names.index(label_column.strip()))
    if DEFAULT_LABEL_COLUMN in names:
        return _Columns(names, names.index(DEFAULT_LABEL_COLUMN))
    return _Columns(names, len(names) - 1)


def _read_rows(records: Iterator[tuple[int, list[str]]], columns: _Columns,
               limits: UploadLimits) -> tuple[np.ndarray, np.ndarray]:
    n_fields = len(columns.names)
    labels = array("q")
    chunk: list[float] = []
    chunk_lines: list[int] = []
    parts: list[np.ndarray] = []
    for line, row in records:
        if len(row) != n_fields:
            raise _invalid(f"file.line {line}", "the row's field count differs from the "
                           "header's", expected=f"{n_fields} fields, as in the header",
                           received=f"{len(row)} fields")
        if len(labels) >= limits.max_rows:
            raise _invalid(f"file.line {line}", "too many rows", type="limit",
                           expected=f"at most {limits.max_rows} data rows",
                           received=f"row {len(labels) + 1}")
        labels.append(_label(row.pop(columns.label_index), line, columns, limits))
        try:
            chunk.extend(map(float, row))
        except ValueError:
            raise _not_a_number(row, line, columns) from None
        chunk_lines.append(line)
        if len(chunk) >= _CSV_CHUNK_VALUES:
            parts.append(_float32_rows(chunk, chunk_lines, columns))
            chunk, chunk_lines = [], []
    if chunk_lines:
        parts.append(_float32_rows(chunk, chunk_lines, columns))
    n_features = n_fields - 1
    x = np.concatenate(parts) if parts else np.empty((0, n_features), dtype=np.float32)
    return x, np.frombuffer(labels, dtype=np.int64).copy()


def _label(text: str, line: int, columns: _Columns, limits: UploadLimits) -> int:
    value = _whole_number(text)
    if value is None or not 0 <= value < limits.max_classes:
        raise _invalid(f"file.line {line}", f"label column {_preview(columns.label)!r} does "
                       "not hold a class index",
                       expected=f"an integer in [0, {limits.max_classes})",
                       received=_preview(text))
    return value


def _whole_number(text: str) -> int | None:
    """int(text), also for floats that are whole numbers ("3.0"); None for anything else."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _not_a_number(features: list[str], line: int, columns: _Columns) -> InvalidInput:
    """The error naming the first of `features` that float() refuses."""
    column, text = next(((column, text) for column, text in zip(columns.features, features,
                                                                 strict=True)
                         if not _is_float(text)), ("?", ""))
    return _invalid(f"file.line {line}", f"column {_preview(column)!r} is not a number",
                    expected="a finite decimal number such as 0.5 or -1e3",
                    received=_preview(text))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _float32_rows(values: list[float], lines: list[int], columns: _Columns) -> np.ndarray:
    """(len(lines), F) float32; NaN, inf and values beyond float32's range are refused."""
    wide = np.array(values, dtype=np.float64).reshape(len(lines), -1)
    with np.errstate(over="ignore", invalid="ignore"):
        x = wide.astype(np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        row, column = np.unravel_index(int(np.argmin(finite)), x.shape)
        name = columns.features[column]
        raise _invalid(f"file.line {lines[row]}", f"column {_preview(name)!r} is not finite",
                       type="not_finite",
                       expected="a finite number within the float32 range (|x| <= 3.4e38)",
                       received=repr(float(wide[row, column])))
    return x
