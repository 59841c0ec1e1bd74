"""Uploaded zip archives, opened as hostile: entries bounded before zipfile parses them, each
member checked from its declared sizes before any of it is decompressed."""

from __future__ import annotations

import io
import math
import zipfile

from .rules import invalid, preview

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"

# Every central-directory entry zipfile parses starts with this signature, so its count in the
# upload bounds the ZipInfo objects (and memory) that opening the archive can cost.
_CENTRAL_DIRECTORY_SIGNATURE = b"PK\x01\x02"
# Members this small may compress as well as they like: they cannot expand to anything harmful,
# and a column of equal labels (all zeros) legitimately deflates a thousandfold.
_RATIO_EXEMPT_BYTES = 1 << 20


def is_zip(data: bytes) -> bool:
    """Whether `data` starts as a zip archive (an .npz, or a zip of image folders) does."""
    return data.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC))


def open_zip(data: bytes, *, max_entries: int, expected: str) -> zipfile.ZipFile:
    """The archive in `data`, refused (InvalidInput) when its central directory may hold more
    than `max_entries` entries or cannot be read; `expected` says what the archive should be."""
    entries = data.count(_CENTRAL_DIRECTORY_SIGNATURE)
    if entries > max_entries:
        raise invalid("file", "the archive has too many entries", type="limit",
                      expected=expected, received=f"up to {entries} entries")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except Exception as error:  # zipfile fails in many ways on damaged directories
        raise invalid("file", "not a readable zip archive", expected=expected,
                      received=preview(f"{type(error).__name__}: {error}")) from None


def check_member(info: zipfile.ZipInfo, path: str, *, max_bytes: int,
                 max_compression_ratio: float) -> None:
    """Refuse from its declaration alone a member that is encrypted, compressed with another
    method than stored or deflated, larger than `max_bytes` uncompressed, or compressed
    suspiciously well (a zip bomb). `path` names it in the error."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise invalid(path, "unsupported compression method", expected="stored or deflated",
                      received=info.compress_type)
    if info.flag_bits & 0x1:
        raise invalid(path, "the member is encrypted", expected="an unencrypted member",
                      received="encrypted")
    if info.file_size > max_bytes:
        raise invalid(path, "the member is too large uncompressed", type="limit",
                      expected=f"at most {max_bytes} bytes", received=f"{info.file_size} bytes")
    ratio = info.file_size / info.compress_size if info.compress_size else math.inf
    if info.file_size > _RATIO_EXEMPT_BYTES and ratio > max_compression_ratio:
        raise invalid(path, "the member is compressed suspiciously well", type="limit",
                      expected=f"a compression ratio of at most {max_compression_ratio:g}",
                      received=f"{info.file_size} bytes from {info.compress_size}")
