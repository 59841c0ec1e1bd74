"""An uploaded CSV, read as hostile: UTF-8 text with a header row, read one bounded line at a time.

One column holds the labels ("label", else the last, or the one `label_column` names), every
other column is a feature.
"""

from __future__ import annotations

import codecs
import csv
import io
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidInput

from .rules import MAX_LISTED, UploadLimits, invalid, preview

DEFAULT_LABEL_COLUMN = "label"

_CSV_CHARS_PER_FIELD = 64  # average, over a whole line: bounds a line before csv splits it
_CSV_CHUNK_VALUES = 1 << 18
_UTF8_CHUNK_BYTES = 1 << 20


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
            raise invalid(f"file.line {self.number}", "a quoted field runs past the end of "
                          "the line", expected="one record per line, quotes closed on it",
                          received="an unclosed quote")
        line = self.text.readline(self.max_chars + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) > self.max_chars:
            raise invalid(f"file.line {self.number}", "the line is too long", type="limit",
                          expected=f"at most {self.max_chars} characters",
                          received=f"more than {self.max_chars}")
        if line.count(",") >= self.max_fields:
            raise invalid(f"file.line {self.number}", "the line has too many fields",
                          type="limit", expected=f"at most {self.max_fields} fields",
                          received=f"{line.count(',') + 1} fields")
        self.record_open = True
        return line


def parse_csv(data: bytes, label_column: str | None,
              limits: UploadLimits) -> tuple[np.ndarray, np.ndarray]:
    """x (N, F) float32 and y (N,) int64 from a UTF-8 CSV, read one line at a time."""
    _check_text(data)
    records = _records(data, limits)
    first = next(records, None)
    if first is None:
        raise invalid("file", "the CSV has no header row", expected="a header row naming the "
                      "columns, then one row per sample", received="only blank lines")
    columns = _columns(*first, label_column, limits)
    x, y = _read_rows(records, columns, limits)
    if len(y) == 0:
        raise invalid("file", "the CSV has no data rows", expected="one row per sample after "
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
            raise invalid("file", "the file is neither an .npz (zip) archive nor UTF-8 text",
                          expected="an .npz archive or a UTF-8 CSV",
                          received=f"byte 0x{data[offset]:02x} at offset {offset} "
                          f"(line {_line_at(data, offset)})") from None
    if b"\x00" in data:
        offset = data.index(b"\x00")
        raise invalid("file", "the file holds NUL bytes", expected="CSV text",
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
            raise invalid(f"file.line {lines.number}", "malformed CSV", expected="comma-"
                          "separated fields, quoted with \"", received=str(error)) from None
        lines.record_open = False
        if row:
            yield lines.number, row


def _columns(line: int, header: list[str], label_column: str | None,
             limits: UploadLimits) -> _Columns:
    path = f"file.line {line}"
    names = [name.strip() for name in header]
    if len(names) < 2:
        raise invalid(path, "the header needs a feature and a label column",
                      expected="at least two comma-separated column names",
                      received=[preview(name) for name in names])
    if len(names) - 1 > limits.max_features:
        raise invalid(path, "too many feature columns", type="limit",
                      expected=f"at most {limits.max_features}", received=len(names) - 1)
    for index, column in enumerate(names):
        if not column:
            raise invalid(path, f"header column {index + 1} has no name",
                          expected="a name for every column", received=header[index])
    duplicates = [column for column, count in Counter(names).items() if count > 1]
    if duplicates:
        raise invalid(path, "duplicate column names", expected="distinct column names",
                      received=[preview(column) for column in duplicates[:MAX_LISTED]])
    if label_column is not None:
        if label_column.strip() not in names:
            raise invalid("label_column", "no such column in the header",
                          expected="one of " + ", ".join(repr(preview(n))
                                                         for n in names[:MAX_LISTED])
                          + (", ..." if len(names) > MAX_LISTED else ""),
                          received=preview(label_column))
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
            raise invalid(f"file.line {line}", "the row's field count differs from the "
                          "header's", expected=f"{n_fields} fields, as in the header",
                          received=f"{len(row)} fields")
        if len(labels) >= limits.max_rows:
            raise invalid(f"file.line {line}", "too many rows", type="limit",
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
        raise invalid(f"file.line {line}", f"label column {preview(columns.label)!r} does "
                      "not hold a class index",
                      expected=f"an integer in [0, {limits.max_classes})",
                      received=preview(text))
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
    return invalid(f"file.line {line}", f"column {preview(column)!r} is not a number",
                   expected="a finite decimal number such as 0.5 or -1e3",
                   received=preview(text))


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
        raise invalid(f"file.line {lines[row]}", f"column {preview(name)!r} is not finite",
                      type="not_finite",
                      expected="a finite number within the float32 range (|x| <= 3.4e38)",
                      received=repr(float(wide[row, column])))
    return x
