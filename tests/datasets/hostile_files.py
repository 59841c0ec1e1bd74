"""Files that attack an upload parser: pickles, zip bombs, lying headers (shared by the
parser's unit tests and the HTTP tests)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

MiB = 1 << 20
GiB = 1 << 30


def make_arrays(n_train: int = 30, n_test: int = 12, shape: tuple[int, ...] = (4,),
                n_classes: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.normal(size=(n_train, *shape)),
        "y_train": np.arange(n_train) % n_classes,
        "x_test": rng.normal(size=(n_test, *shape)),
        "y_test": np.arange(n_test) % n_classes,
    }


def npz(compressed: bool = True, **arrays: Any) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def zip_of(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, payload in members:
            archive.writestr(name, payload)
    return buffer.getvalue()


def valid_members(**replace: bytes) -> list[tuple[str, bytes]]:
    """The four .npy members of a valid dataset, with some replaced by raw bytes."""
    arrays = make_arrays()
    return [(f"{key}.npy", replace.get(key, npy(arrays[key]))) for key in arrays]


def crafted_zip(entries: list[tuple[str, bytes, int, int]]) -> bytes:
    """A deflated zip from (name, raw deflate stream, declared size, crc): sizes may lie."""
    local, central = io.BytesIO(), io.BytesIO()
    for name, stream, file_size, crc in entries:
        offset = local.tell()
        encoded = name.encode()
        local.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, zipfile.ZIP_DEFLATED, 0,
                                33, crc, len(stream), file_size, len(encoded), 0))
        local.write(encoded + stream)
        central.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0,
                                  zipfile.ZIP_DEFLATED, 0, 33, crc, len(stream), file_size,
                                  len(encoded), 0, 0, 0, 0, 0, offset))
        central.write(encoded)
    directory = central.getvalue()
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(directory), local.tell(), 0)
    return local.getvalue() + directory + end


def deflate(payload: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(payload) + compressor.flush()


def deflated_zeros(prefix: bytes, n_zero_bytes: int) -> bytes:
    """Raw deflate of prefix + n zero bytes, made from one compressed MiB repeated (fast)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    # After a full flush nothing refers back, so the same bytes can be repeated.
    zeros = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + zeros * (n_zero_bytes // MiB) + compressor.flush()


class OpensAFile:
    """Unpickling this calls open(path, "w"): code execution if anyone unpickles it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))
