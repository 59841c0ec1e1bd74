"""Tests for parse_upload: valid .npz and CSV round trips, and every hostile file we can build."""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.datasets.uploads import ParsedUpload, UploadLimits, parse_upload
from service.errors import ErrorDetail, InvalidInput
from tests.datasets.hostile_files import (
    GiB,
    MiB,
    OpensAFile,
    crafted_zip,
    deflate,
    deflated_zeros,
    make_arrays,
    npy,
    npy_header,
    npz,
    valid_members,
    zip_of,
)

# --- helpers ------------------------------------------------------------------------------


def rejected(data: bytes, path: str, filename: str = "upload", **kwargs: Any) -> ErrorDetail:
    with pytest.raises(InvalidInput) as caught:
        parse_upload(filename, data, **kwargs)
    detail = caught.value.details[0]
    assert detail.path == path, detail
    assert caught.value.status == 422
    return detail


def measured(call: Callable[[], Any]) -> tuple[float, int, Any]:
    """(seconds, peak bytes allocated, result or the InvalidInput raised) of call()."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        outcome = call()
    except InvalidInput as error:
        outcome = error
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return seconds, peak, outcome


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def balanced_csv(n_rows: int = 60, n_classes: int = 3) -> bytes:
    return csv_bytes("a,b,label", *(f"{i},{-i / 2},{i % n_classes}" for i in range(n_rows)))


# --- valid .npz ---------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [True, False])
def test_npz_round_trip(compressed: bool) -> None:
    arrays = make_arrays()
    parsed = parse_upload("mine.npz", npz(compressed, **arrays))
    assert isinstance(parsed, ParsedUpload) and parsed.source_format == "npz"
    ds = parsed.dataset
    assert ds.name == "mine.npz" and ds.n_classes == 3 and ds.input_shape == (4,)
    for key, value in arrays.items():
        got = getattr(ds, key)
        assert got.dtype == (np.float32 if key.startswith("x") else np.int64)
        np.testing.assert_array_equal(got, value.astype(got.dtype))


def test_npz_accepts_ints_bools_whole_float_labels_and_fortran_order() -> None:
    arrays = make_arrays()
    arrays["x_train"] = np.asfortranarray(arrays["x_train"])
    arrays["x_test"] = (arrays["x_test"] > 0).astype(np.int16)
    arrays["y_train"] = arrays["y_train"].astype(np.float32)
    arrays["y_test"] = arrays["y_test"].astype(np.uint8)
    ds = parse_upload("f.npz", npz(**arrays), name="mixed").dataset
    assert ds.name == "mixed" and ds.x_train.flags.c_contiguous
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"].astype(np.float32))
    np.testing.assert_array_equal(ds.x_test, arrays["x_test"])
    assert ds.y_train.dtype == ds.y_test.dtype == np.int64


def test_npz_image_shaped_x() -> None:
    ds = parse_upload("img.npz", npz(**make_arrays(shape=(1, 8, 8), n_classes=10))).dataset
    assert ds.x_train.shape == (30, 1, 8, 8) and ds.x_test.shape == (12, 1, 8, 8)
    assert ds.input_shape == (1, 8, 8) and ds.n_classes == 10


def test_n_classes_counts_classes_seen_only_in_test() -> None:
    arrays = make_arrays()
    arrays["y_test"][0] = 7
    assert parse_upload("f.npz", npz(**arrays)).dataset.n_classes == 8


# --- valid CSV ----------------------------------------------------------------------------


def test_csv_round_trip_is_stratified_and_reproducible() -> None:
    parsed = parse_upload("data.csv", balanced_csv(), test_fraction=0.25, split_seed=3)
    ds = parsed.dataset
    assert parsed.source_format == "csv" and ds.name == "data.csv" and ds.n_classes == 3
    assert ds.x_train.shape == (45, 2) and ds.x_test.shape == (15, 2)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_test).tolist() == [5, 5, 5]
    rows = {(float(a), float(b), int(c)) for (a, b), c in
            zip(np.concatenate([ds.x_train, ds.x_test]),
                np.concatenate([ds.y_train, ds.y_test]), strict=True)}
    assert rows == {(float(i), -i / 2, i % 3) for i in range(60)}
    again = parse_upload("data.csv", balanced_csv(), test_fraction=0.25, split_seed=3).dataset
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_csv_label_column_defaults_to_label_then_last() -> None:
    labelled = csv_bytes("a,label,b", *(f"{i},{i % 2},{10 * i}" for i in range(20)))
    ds = parse_upload("f.csv", labelled).dataset
    assert ds.input_shape == (2,)
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    np.testing.assert_array_equal(x[:, 1], 10 * x[:, 0])
    np.testing.assert_array_equal(y, x[:, 0] % 2)
    last = csv_bytes("a,b,kind", *(f"{i},{i},{i % 4}" for i in range(20)))
    assert parse_upload("f.csv", last).dataset.n_classes == 4


def test_csv_label_column_by_name() -> None:
    data = csv_bytes("species,w,label", *(f"{i % 2},{i},{i % 5}" for i in range(20)))
    ds = parse_upload("f.csv", data, label_column=" species ").dataset
    assert ds.n_classes == 2 and ds.input_shape == (2,)
    x = np.concatenate([ds.x_train, ds.x_test])
    np.testing.assert_array_equal(np.concatenate([ds.y_train, ds.y_test]), x[:, 0] % 2)


def test_csv_tolerates_bom_crlf_quotes_blank_lines_and_whole_float_labels() -> None:
    data = b"\xef\xbb\xbf\"a\",label\r\n\r\n" + b"".join(
        f"\"{i}.5\",{i % 2}.0\r\n".encode() for i in range(10)) + b"\r\n"
    ds = parse_upload("f.csv", data).dataset
    assert len(ds.y_train) + len(ds.y_test) == 10 and ds.n_classes == 2


# --- hostile .npz -------------------------------------------------------------------------


def test_pickled_object_array_is_refused_without_unpickling(tmp_path: Path) -> None:
    canary, proof = tmp_path / "pwned", tmp_path / "proof"
    arrays = make_arrays()
    data = npz(**{**arrays, "x_train": np.array([OpensAFile(canary)], dtype=object)})
    # The payload is live: numpy with allow_pickle=True would create the file.
    live = npz(**{**arrays, "x_train": np.array([OpensAFile(proof)], dtype=object)})
    with np.load(io.BytesIO(live), allow_pickle=True) as archive:
        archive["x_train"][0].close()
    assert proof.exists()

    detail = rejected(data, "file.x_train")
    assert "object" in detail.received
    assert not canary.exists()


def test_deflated_zeros_builds_a_real_bomb() -> None:
    stream = deflated_zeros(b"head", 4 * MiB)
    assert len(stream) < 8_000
    inflated = zlib.decompress(stream, -15)
    assert inflated[:4] == b"head" and len(inflated) == 4 + 4 * MiB and not any(inflated[4:])


def test_zip_bomb_is_refused_fast_and_small() -> None:
    header = npy_header((GiB // 4, 2))  # 2 GiB of float32 zeros
    bomb = deflated_zeros(header, 2 * GiB)
    # The CRC is left 0: nothing may read far enough to check it.
    data = crafted_zip([("x_train.npy", bomb, len(header) + 2 * GiB, 0),
                        *((name, deflate(payload), len(payload), zlib.crc32(payload))
                          for name, payload in valid_members()[1:])])
    assert len(data) < 3 * MiB
    seconds, peak, outcome = measured(lambda: parse_upload("bomb.npz", data))
    assert isinstance(outcome, InvalidInput)
    assert outcome.details[0].path == "file.x_train" and outcome.details[0].type == "limit"
    assert outcome.message == "the member is too large uncompressed"
    assert seconds < 1.0 and peak < 50 * MiB


def test_small_members_may_compress_well() -> None:
    arrays = make_arrays(n_train=4_000)
    arrays["y_train"] = np.zeros(4_000, dtype=np.int64)  # 32 KB deflating far beyond 200:1
    with zipfile.ZipFile(io.BytesIO(npz(**arrays))) as archive:
        info = archive.getinfo("y_train.npy")
        assert info.file_size / info.compress_size > 200
    assert parse_upload("zeros.npz", npz(**arrays)).dataset.y_train.shape == (4_000,)


def test_compression_ratio_is_checked_below_the_size_limit() -> None:
    header = npy_header((4 * MiB, 1))  # 16 MiB of zeros deflated about 1000:1
    stream = deflated_zeros(header, 16 * MiB)
    data = crafted_zip([("x_train.npy", stream, len(header) + 16 * MiB, 0),
                        *((name, deflate(payload), len(payload), zlib.crc32(payload))
                          for name, payload in valid_members()[1:])])
    seconds, peak, outcome = measured(lambda: parse_upload("bomb.npz", data))
    assert isinstance(outcome, InvalidInput)
    assert outcome.details[0].path == "file.x_train"
    assert "compressed suspiciously well" in outcome.message
    assert seconds < 1.0 and peak < 50 * MiB


def test_declared_size_bounds_decompression_even_when_the_stream_is_a_bomb() -> None:
    arrays = make_arrays(n_train=10, shape=(1,))
    honest = npy(np.zeros((10, 1), dtype=np.float32))
    # The member declares 10 floats, but its deflate stream inflates to 1 GiB more zeros.
    stream = deflated_zeros(honest, GiB)
    data = crafted_zip([("x_train.npy", stream, len(honest), zlib.crc32(honest)),
                        *((f"{key}.npy", deflate(npy(arrays[key])), len(npy(arrays[key])),
                           zlib.crc32(npy(arrays[key]))) for key in ("y_train", "x_test",
                                                                       "y_test"))])
    seconds, peak, outcome = measured(lambda: parse_upload("liar.npz", data))
    assert isinstance(outcome, ParsedUpload)
    assert outcome.dataset.x_train.shape == (10, 1) and not outcome.dataset.x_train.any()
    assert seconds < 1.0 and peak < 50 * MiB


def test_npy_header_declaring_a_huge_shape_is_refused_fast() -> None:
    huge = npy_header((10**12, 10)) + bytes(64)
    data = zip_of(valid_members(x_train=huge), method=zipfile.ZIP_STORED)
    seconds, peak, outcome = measured(lambda: parse_upload("huge.npz", data))
    assert isinstance(outcome, InvalidInput)
    assert outcome.details[0].path == "file.x_train" and outcome.details[0].received == 10**12
    assert seconds < 1.0 and peak < 50 * MiB


@pytest.mark.parametrize("shape", [(30, 5), (29, 4), (-30, -4)])
def test_npy_header_must_match_what_the_member_holds(shape: tuple[int, ...]) -> None:
    lying = npy_header(shape, "<f8") + make_arrays()["x_train"].astype("<f8").tobytes()
    detail = rejected(zip_of(valid_members(x_train=lying)), "file.x_train")
    assert "bytes" in detail.received or "negative" in detail.message


@pytest.mark.parametrize("payload", [b"", b"\x93NUMPY", b"\x93NUMPY\x03\x00" + bytes(16),
                                     b"not an npy file at all", npy_header((30, 4))[:20]])
def test_damaged_npy_members_are_refused(payload: bytes) -> None:
    rejected(zip_of(valid_members(x_train=payload)), "file.x_train")


@pytest.mark.parametrize(("members", "problem"), [
    ([*valid_members(), ("extra.npy", b"")], "unexpected member 'extra.npy'"),
    (valid_members()[:3], "missing member 'y_test.npy'"),
    ([*valid_members(), valid_members()[0]], "duplicate member 'x_train.npy'"),
    ([*valid_members(), ("data/", b"")], "unexpected directory 'data/'"),
    ([("sub/" + name, payload) for name, payload in valid_members()],
     "unexpected member 'sub/x_train.npy'"),
])
@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_the_member_set_must_be_exact(members: list[tuple[str, bytes]], problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_upload("f.npz", zip_of(members))
    messages = [detail.message for detail in caught.value.details]
    assert problem in messages
    assert all(detail.path == "file" for detail in caught.value.details)


def test_too_many_zip_entries_are_refused_before_the_directory_is_parsed() -> None:
    data = zip_of([*valid_members(), *((f"junk{i}", b"") for i in range(1_001))],
                  method=zipfile.ZIP_STORED)
    assert rejected(data, "file").type == "limit"


@pytest.mark.parametrize("value", [
    np.array([["a", "b"]] * 30),                                  # unicode
    np.array([[b"a", b"b"]] * 30),                                # bytes
    np.zeros((30, 4), dtype=[("a", "<f4")]),                      # structured
    np.zeros((30, 4), dtype=np.complex64),                        # complex
    np.zeros((30, 4), dtype="datetime64[s]"),                     # datetime
    np.zeros((30, 4), dtype="V4"),                                # void
])
def test_non_numeric_dtypes_are_refused(value: np.ndarray) -> None:
    arrays = make_arrays()
    detail = rejected(npz(**{**arrays, "x_train": value}), "file.x_train")
    assert detail.message == "unsupported dtype"


def test_unsupported_compression_is_refused() -> None:
    data = zip_of(valid_members(), method=zipfile.ZIP_BZIP2)
    assert rejected(data, "file.x_train").message == "unsupported compression method"


@pytest.mark.parametrize(("limits", "path"), [
    (UploadLimits(max_uncompressed_bytes=1_000), "file.x_train"),
    (UploadLimits(max_uncompressed_bytes=1_300), "file"),
    (UploadLimits(max_rows=20), "file.x_train"),
    (UploadLimits(max_rows=40), "file"),
    (UploadLimits(max_features=3), "file.x_train"),
])
def test_npz_limits(limits: UploadLimits, path: str) -> None:
    data = npz(**make_arrays())
    assert rejected(data, path, limits=limits).type == "limit"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_non_finite_features_are_counted(bad: float) -> None:
    arrays = make_arrays()
    arrays["x_test"][3, 1] = arrays["x_test"][5, 2] = bad
    detail = rejected(npz(**arrays), "file.x_test")
    assert detail.type == "not_finite"
    assert "2 non-finite" in detail.message and "x_test[3, 1]" in detail.received


@pytest.mark.parametrize(("labels", "problem"), [
    (np.array([0, 1, -1] * 10), "negative"),
    (np.array([0.0, 1.0, 2.5] * 10), "whole numbers"),
    (np.array([0.0, 1.0, np.nan] * 10), "whole numbers"),
    (np.array([0, 1, 10_000] * 10), "10000 or more"),
    (np.array([0, 1, 2**63] * 10, dtype=np.uint64), "10000 or more"),
])
def test_bad_labels_are_refused(labels: np.ndarray, problem: str) -> None:
    detail = rejected(npz(**{**make_arrays(), "y_train": labels}), "file.y_train")
    assert problem in detail.message and "10 labels" in detail.message


def test_mismatched_row_counts_name_both_arrays() -> None:
    arrays = make_arrays()
    detail = rejected(npz(**{**arrays, "y_test": arrays["y_test"][:-1]}), "file.y_test")
    assert "y_test" in detail.message and "x_test" in detail.message
    assert detail.received == "11 labels" and "(12)" in detail.expected


@pytest.mark.parametrize(("key", "value", "path"), [
    ("x_train", np.zeros(30), "file.x_train"),
    ("x_train", np.zeros((30, 1, 2, 2, 1)), "file.x_train"),
    ("x_train", np.zeros((30, 1, 2)), "file.x_train"),
    ("y_train", np.zeros((30, 1), dtype=int), "file.y_train"),
    ("x_test", np.zeros((12, 5)), "file.x_test"),
    ("x_test", np.zeros((0, 4)), "file.x_test"),
    ("x_train", np.zeros((30, 0)), "file.x_train"),
])
def test_bad_shapes_are_refused(key: str, value: np.ndarray, path: str) -> None:
    rejected(npz(**{**make_arrays(), key: value}), path)


def test_label_column_is_refused_for_npz() -> None:
    rejected(npz(**make_arrays()), "label_column", label_column="label")


@pytest.mark.parametrize("data", [b"PK\x03\x04", b"PK\x03\x04" + bytes(100),
                                  b"PK\x05\x06" + bytes(18)])
def test_damaged_archives_are_refused(data: bytes) -> None:
    rejected(data, "file")


def test_mutated_npz_raises_only_invalid_input() -> None:
    original = npz(**make_arrays(n_train=12, n_test=6))
    rng = np.random.default_rng(0)
    for trial in range(400):
        data = bytearray(original)
        if trial % 4 == 0:
            data = data[: int(rng.integers(4, len(data)))]
        else:
            for position in rng.integers(4, len(data), size=int(rng.integers(1, 4))):
                data[position] = int(rng.integers(256))
        try:
            parse_upload("fuzz.npz", bytes(data))
        except InvalidInput as error:
            # Every failure is one the parser anticipated, not its last-resort fallback.
            assert error.message != "the file could not be read", error.details


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::SyntaxWarning")
def test_mutated_npy_headers_raise_only_invalid_input() -> None:
    member = npy(make_arrays()["x_train"])
    header_length = len(npy_header((30, 4), "<f8"))
    tokens = np.frombuffer(b"0123456789(),' <>fiubOUSV|{}:[]\\\n\x00\xff", dtype=np.uint8)
    rng = np.random.default_rng(2)
    for _ in range(300):
        data = bytearray(member)
        for position in rng.integers(0, header_length, size=int(rng.integers(1, 3))):
            data[position] = int(rng.choice(tokens))
        try:
            parse_upload("fuzz.npz", zip_of(valid_members(x_train=bytes(data))))
        except InvalidInput as error:
            assert error.message != "the file could not be read", error.details


# --- hostile CSV --------------------------------------------------------------------------


def test_ragged_rows_name_the_line() -> None:
    data = csv_bytes("a,b,label", "1,2,0", "3,4,1", "5,1", "7,8,0")
    detail = rejected(data, "file.line 4")
    assert detail.expected == "3 fields, as in the header" and detail.received == "2 fields"


@pytest.mark.parametrize(("value", "type_"), [("abc", "invalid"), ("", "invalid"),
                                              ("nan", "not_finite"), ("-inf", "not_finite"),
                                              ("1e39", "not_finite")])
def test_bad_features_name_line_and_column(value: str, type_: str) -> None:
    data = csv_bytes("a,b,label", "1,2,0", "3,4,1", f"5,{value},0", "7,8,1")
    detail = rejected(data, "file.line 4")
    assert "'b'" in detail.message and detail.type == type_


@pytest.mark.parametrize("label", ["cat", "-1", "2.5", "nan", "inf", "10000", "1e300", ""])
def test_bad_labels_name_the_line(label: str) -> None:
    data = csv_bytes("a,label", "1,0", "2,1", f"3,{label}")
    detail = rejected(data, "file.line 4")
    assert detail.received == label and "[0, 10000)" in detail.expected


def test_non_utf8_bytes_are_refused() -> None:
    detail = rejected(b"a,label\n1,0\n2,\xff\n", "file")
    assert "0xff" in detail.received and "line 3" in detail.received


@pytest.mark.parametrize(("data", "path"), [
    (b"", "file"),
    (b"a,b,label\n", "file"),
    (b"\n\n\r\n", "file"),
    (b"a,label\n1,0\n\x00\n", "file"),
    (b"just_one_column\n1\n2\n", "file.line 1"),
    (b"a,a,label\n1,2,0\n", "file.line 1"),
    (b"a,,label\n1,2,0\n", "file.line 1"),
    (b'a,label\n"1\n2",0\n', "file.line 2"),
    (b'a,label\n1,0\n2,"1', "file.line 3"),
    (b'a,label\n1,0\n"2"x",1\n', "file.line 3"),
])
def test_malformed_csv_is_refused(data: bytes, path: str) -> None:
    rejected(data, path)


@pytest.mark.parametrize(("data", "limits", "path"), [
    (balanced_csv(60), UploadLimits(max_rows=59), "file.line 61"),
    (balanced_csv(60), UploadLimits(max_features=1), "file.line 1"),
    (csv_bytes("a,b,label", "1,2,0", "1,2,3,4,5,6,7,8,9"), UploadLimits(max_features=2),
     "file.line 3"),
    (csv_bytes("a,b,label", "1,2,0", "1" * 300 + ",2,1"), UploadLimits(max_features=2),
     "file.line 3"),
    (balanced_csv(60, n_classes=6), UploadLimits(max_classes=5), "file.line 7"),
])
def test_csv_limits(data: bytes, limits: UploadLimits, path: str) -> None:
    rejected(data, path, limits=limits)


@pytest.mark.parametrize(("kwargs", "path"), [
    ({"test_fraction": 0.0}, "test_fraction"),
    ({"test_fraction": 1.5}, "test_fraction"),
    ({"test_fraction": float("nan")}, "test_fraction"),
    ({"split_seed": -1}, "split_seed"),
    ({"split_seed": True}, "split_seed"),
    ({"label_column": "colour"}, "label_column"),
])
def test_bad_arguments_are_refused(kwargs: dict[str, Any], path: str) -> None:
    rejected(balanced_csv(), path, **kwargs)


def test_a_split_that_leaves_no_test_rows_names_test_fraction() -> None:
    one_per_class = csv_bytes("a,label", "1,0", "2,1", "3,2")
    assert "at least one test" in rejected(one_per_class, "test_fraction").expected


def test_random_bytes_raise_only_invalid_input() -> None:
    rng = np.random.default_rng(1)
    alphabet = np.frombuffer(b'0123456789,.-"\n\r eE+naif\x00\xff\xc3label', dtype=np.uint8)
    for _ in range(300):
        data = rng.choice(alphabet, size=int(rng.integers(0, 80))).tobytes()
        try:
            parse_upload("fuzz.csv", b"a,label\n" + data)
        except InvalidInput as error:
            assert error.message != "the file could not be read", error.details
