"""Hostile dataset uploads through HTTP: multipart POST /v1/datasets end to end.

service.datasets.uploads is unit-tested in tests/datasets/test_uploads.py; here the same
attacks go through the route (the body limit, multipart parsing, the thread the parser runs
in, the error shape) and nothing may be stored.
"""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.api.shared_app import BACKENDS, shared_client
from tests.datasets.hostile_files import (
    GiB,
    MiB,
    OpensAFile,
    crafted_zip,
    deflate,
    deflated_zeros,
    make_arrays,
    npy_header,
    npz,
    valid_members,
    zip_of,
)

# --- hostile files (as tests/datasets/test_uploads.py builds them) -------------------------


# --- the app ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def client(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app per backend for the module: refused uploads store nothing, and the few
    accepted ones are counted relative to what was there."""
    with shared_client(request, tmp_path_factory) as test_client:
        yield test_client


def upload(client: TestClient, data: bytes, filename: str = "data.npz", **form: Any):
    return client.post("/v1/datasets", files={"file": (filename, data)}, data=form)


def assert_refused(response: Any, path: str, type_: str | None = None) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"]
    detail = next(d for d in error["details"] if d["path"] == path)
    assert detail["message"], detail
    if type_ is not None:
        assert detail["type"] == type_, detail
    return detail


def measured(client: TestClient, data: bytes, filename: str = "data.npz") -> tuple[
        float, int, Any]:
    """(seconds, peak bytes allocated beyond the upload itself, response) of one upload."""
    upload(client, npz(**make_arrays()))  # warm up: imports, pools, caches
    tracemalloc.start()
    start = time.perf_counter()
    try:
        response = upload(client, data, filename)
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return seconds, peak, response


def stored(client: TestClient) -> int:
    return len(client.get("/v1/datasets", params={"limit": 1000}).json()["data"])


def test_a_pickled_object_array_is_refused_without_being_unpickled(
        client: TestClient, tmp_path: Path) -> None:
    canary, proof = tmp_path / "pwned", tmp_path / "proof"
    before = stored(client)
    arrays = make_arrays()
    payload = npz(**{**arrays, "x_train": np.array([OpensAFile(canary)], dtype=object)})
    # The payload is live: unpickling it (allow_pickle=True) creates the file.
    live = npz(**{**arrays, "x_train": np.array([OpensAFile(proof)], dtype=object)})
    with np.load(io.BytesIO(live), allow_pickle=True) as archive:
        archive["x_train"][0].close()
    assert proof.exists()

    detail = assert_refused(upload(client, payload), "file.x_train")
    assert "object" in detail["received"]
    assert not canary.exists()
    assert stored(client) == before


def test_a_pickle_posing_as_a_csv_is_just_bad_text(client: TestClient, tmp_path: Path) -> None:
    import pickle

    canary = tmp_path / "pwned"
    response = upload(client, pickle.dumps(OpensAFile(canary)), "data.csv")
    assert_refused(response, "file")
    assert not canary.exists()


def test_a_zip_bomb_is_refused_fast_and_small(client: TestClient) -> None:
    header = npy_header((GiB // 4, 2))  # 2 GiB of float32 zeros in ~2 MB
    bomb = deflated_zeros(header, 2 * GiB)
    data = crafted_zip([("x_train.npy", bomb, len(header) + 2 * GiB, 0),
                        *((name, deflate(payload), len(payload), zlib.crc32(payload))
                          for name, payload in valid_members()[1:])])
    assert len(data) < 3 * MiB
    seconds, peak, response = measured(client, data)
    detail = assert_refused(response, "file.x_train", "limit")
    assert "too large uncompressed" in detail["message"]
    assert seconds < 1.0 and peak < 50 * MiB, (seconds, peak)


def test_a_bomb_under_the_size_limit_is_refused_by_its_compression_ratio(
        client: TestClient) -> None:
    header = npy_header((4 * MiB, 1))  # 16 MiB of zeros deflated about 1000:1
    data = crafted_zip([("x_train.npy", deflated_zeros(header, 16 * MiB),
                         len(header) + 16 * MiB, 0),
                        *((name, deflate(payload), len(payload), zlib.crc32(payload))
                          for name, payload in valid_members()[1:])])
    seconds, peak, response = measured(client, data)
    detail = assert_refused(response, "file.x_train", "limit")
    assert "compressed suspiciously well" in detail["message"]
    assert seconds < 1.0 and peak < 50 * MiB, (seconds, peak)


def test_a_member_lying_about_its_size_inflates_no_further(client: TestClient) -> None:
    honest = io.BytesIO()
    np.save(honest, np.zeros((30, 4), dtype=np.float32))
    arrays = make_arrays()
    members = dict(valid_members())
    # x_train declares its 30x4 floats, but its deflate stream goes on for 1 GiB of zeros.
    data = crafted_zip([("x_train.npy", deflated_zeros(honest.getvalue(), GiB),
                         len(honest.getvalue()), zlib.crc32(honest.getvalue())),
                        *((name, deflate(members[name]), len(members[name]),
                           zlib.crc32(members[name])) for name in
                          ("y_train.npy", "x_test.npy", "y_test.npy"))])
    seconds, peak, response = measured(client, data)
    assert response.status_code == 201, response.text
    assert response.json()["n_train"] == len(arrays["y_train"])
    assert seconds < 1.0 and peak < 50 * MiB, (seconds, peak)


def test_an_npy_header_declaring_a_huge_shape_is_refused_fast(client: TestClient) -> None:
    huge = npy_header((10**12, 10)) + bytes(64)
    data = zip_of(valid_members(x_train=huge), method=zipfile.ZIP_STORED)
    seconds, peak, response = measured(client, data)
    detail = assert_refused(response, "file.x_train", "limit")
    assert detail["received"] == 10**12
    assert seconds < 1.0 and peak < 50 * MiB, (seconds, peak)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_non_finite_features_are_refused(client: TestClient, bad: float) -> None:
    arrays = make_arrays()
    arrays["x_train"][3, 1] = bad
    detail = assert_refused(upload(client, npz(**arrays)), "file.x_train", "not_finite")
    assert "x_train[3, 1]" in detail["received"]


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e39"])
def test_non_finite_csv_features_name_the_line(client: TestClient, value: str) -> None:
    csv = f"a,b,label\n1,2,0\n3,{value},1\n5,6,0\n7,8,1\n".encode()
    assert_refused(upload(client, csv, "d.csv"), "file.line 3", "not_finite")


@pytest.mark.parametrize(("key", "labels", "problem"), [
    ("y_train", -1, "negative"), ("y_train", 10_000, "10000 or more"),
    ("y_test", 2**40, "10000 or more"), ("y_test", 1.5, "not whole numbers")])
def test_labels_outside_the_class_range_are_refused(client: TestClient, key: str,
                                                    labels: float, problem: str) -> None:
    arrays = make_arrays()
    arrays[key] = arrays[key].astype(np.float64 if isinstance(labels, float) else np.int64)
    arrays[key][0] = labels
    response = upload(client, npz(**arrays))
    assert_refused(response, f"file.{key}")
    assert problem in response.json()["error"]["message"]


def test_csv_labels_outside_the_class_range_name_the_line(client: TestClient) -> None:
    csv = b"a,label\n1,0\n2,1\n3,-4\n4,0\n"
    assert_refused(upload(client, csv, "d.csv"), "file.line 4")


@pytest.mark.parametrize(("change", "path"), [
    (lambda a: a.update(y_train=a["y_train"][:-1]), "file.y_train"),
    (lambda a: a.update(y_test=np.concatenate([a["y_test"], [0]])), "file.y_test"),
    (lambda a: a.update(x_test=a["x_test"][:, :3]), "file.x_test"),
])
def test_mismatched_row_counts_and_shapes_are_refused(client: TestClient, change,
                                                      path: str) -> None:
    arrays = make_arrays()
    change(arrays)
    response = upload(client, npz(**arrays))
    detail = assert_refused(response, path)
    assert "differ" in response.json()["error"]["message"], detail


@pytest.mark.parametrize(("data", "filename", "path"), [
    (b"", "empty.npz", "file"),
    (b"PK\x03\x04" + bytes(100), "truncated.npz", "file"),
    (zip_of([("../../etc/passwd", b"x")]), "traversal.npz", "file"),
    (b"a,b,label\n1,2,0\n1,2\n", "ragged.csv", "file.line 3"),
    (b"\x00" * 64, "nul.csv", "file"),
])
def test_malformed_files_name_the_problem(client: TestClient, data: bytes, filename: str,
                                          path: str) -> None:
    assert_refused(upload(client, data, filename), path)


@pytest.mark.parametrize(("form", "path"), [
    ({"test_fraction": "0"}, "test_fraction"), ({"test_fraction": "NaN"}, "test_fraction"),
    ({"test_fraction": "1e308"}, "test_fraction"), ({"split_seed": "-1"}, "split_seed"),
    ({"split_seed": str(10**30)}, "split_seed"), ({"name": "x" * 201}, "name"),
    ({"name": "nul\x00name"}, "name"),
    ({"label_column": "tab\tcolumn"}, "label_column"),
])
def test_bad_form_fields_are_422(client: TestClient, form: dict[str, str], path: str) -> None:
    response = upload(client, npz(**make_arrays()), **form)
    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize("filename", [
    b"evil\x00\x1b[31m\x07name.npz", b"\xff\xfe.npz", "\u202ertl.npz".encode(),
    b'quote".npz', b"a\r\nX-Injected: 1\r\n.npz"])
def test_hostile_file_names_are_cleaned_or_refused(client: TestClient, filename: bytes) -> None:
    """Sent as raw multipart: a client library would percent-encode them."""
    body = (b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="' + filename
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + npz(**make_arrays())
            + b"\r\n--bnd--\r\n")
    response = client.post("/v1/datasets", content=body,
                           headers={"content-type": "multipart/form-data; boundary=bnd"})
    assert response.status_code in (201, 400), response.text
    if response.status_code == 201:
        name = response.json()["name"]
        assert name and not any(ord(char) < 32 or ord(char) == 127 for char in name), name
    else:
        assert response.json()["error"]["details"][0]["path"] == "body"


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"garbage", "multipart/form-data; boundary=bnd", 400),
    (b"x", "multipart/form-data", 400),
    (b"--bnd\r\n\r\n--bnd--", "multipart/form-data; boundary=bnd", 400),
    (b"", "multipart/form-data; boundary=bnd", 422),
    (b'{"file": "x"}', "application/json", 422),
])
def test_malformed_multipart_is_4xx(client: TestClient, body: bytes, content_type: str,
                                    status: int) -> None:
    response = client.post("/v1/datasets", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["error"]["details"][0]["path"] in ("body", "file")


def test_nothing_refused_was_stored(client: TestClient) -> None:
    before = stored(client)
    for data in (b"", npz(**{**make_arrays(), "y_train": np.full(30, -1)})):
        assert upload(client, data).status_code == 422
    assert stored(client) == before
