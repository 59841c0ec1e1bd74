"""Reading .npy arrays and .npz archives without pickle, safely from many threads at once.

numpy parses an .npy header (a Python dict literal) with `ast.literal_eval`. On CPython 3.11
two threads building ASTs at the same time can trip the interpreter-wide AST recursion counter
and raise `SystemError: AST constructor recursion depth mismatch` (CPython gh-106905 and its
relatives): an API serving uploads and model loads from a thread pool does exactly that. Every
header dropnet reads therefore goes through `read_npy_header`, which parses one header at a
time; the array data, the costly part, is read outside the lock.
"""

from __future__ import annotations

import io
import os
import threading
import zipfile
import zlib
from typing import IO

import numpy as np

MAX_HEADER_BYTES = 10_000
"""numpy's own default limit on an .npy header's length."""

_READ_CHUNK_BYTES = 1 << 20
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_header_lock = threading.Lock()


def read_npy_header(
    stream: IO[bytes], *, max_header_size: int = MAX_HEADER_BYTES
) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the start of an .npy stream, leaving it at the data.

    Format versions 1.0 and 2.0 (what numpy.save writes for numeric arrays) are read; anything
    else raises ValueError naming the version received.
    """
    version = np.lib.format.read_magic(stream)
    reader = _HEADER_READERS.get(version)
    if reader is None:
        raise ValueError(f"expected .npy format version 1.0 or 2.0, "
                         f"received {version[0]}.{version[1]}")
    with _header_lock:
        shape, fortran_order, dtype = reader(stream, max_header_size=max_header_size)
    return tuple(shape), fortran_order, dtype


def read_npy(stream: IO[bytes], *, max_header_size: int = MAX_HEADER_BYTES) -> np.ndarray:
    """The writable array stored in an .npy stream; object arrays are refused (no pickle).

    Raises ValueError when the header is malformed or the data ends before the header's
    shape and dtype say it should.
    """
    shape, fortran_order, dtype = read_npy_header(stream, max_header_size=max_header_size)
    if dtype.hasobject:
        raise ValueError(f"expected an array of plain values, received dtype {dtype} "
                         "(object arrays need pickle, which dropnet never loads)")
    count = 1
    for size in shape:
        count *= size
    array = np.empty(count, dtype=dtype)
    if count and dtype.itemsize:
        _read_exactly(stream, array.view(np.uint8).data)
    if fortran_order:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def load_npz(source: bytes | str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of an .npz archive (bytes or a path), keyed by name without ".npy".

    Raises ValueError when the archive or one of its arrays cannot be read.
    """
    archive_file = io.BytesIO(source) if isinstance(source, bytes) else source
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(archive_file) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                if name in arrays:
                    raise ValueError(f"expected one member per array, "
                                     f"received {name!r} twice")
                with archive.open(info) as stream:
                    arrays[name] = read_npy(stream)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise ValueError(f"expected an .npz archive, received bytes that fail with "
                         f"{type(error).__name__}: {error}") from None
    return arrays


def _read_exactly(stream: IO[bytes], target: memoryview) -> None:
    """Fill `target` from `stream` in bounded chunks; ValueError if the stream ends first."""
    filled = 0
    while filled < len(target):
        chunk = stream.read(min(_READ_CHUNK_BYTES, len(target) - filled))
        if not chunk:
            raise ValueError(f"expected {len(target)} bytes of array data, "
                             f"received {filled}")
        target[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
