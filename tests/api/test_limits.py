"""Limits a client cannot talk its way past: body sizes (checked while reading, chunked bodies
too, and before reading when Content-Length says too much), the separate upload limit, page
sizes, and the configurable limits on what a job may ask for."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.store.session import Database
from service.workers.executor import NoExecutor
from tests.factories import DIGITS_SPEC, dataset_npz, spec

KiB = 1024
BODY_LIMIT, UPLOAD_LIMIT = 64 * KiB, 1024 * KiB


def limited_app(database_url: str, db: Database, **limits: Any) -> FastAPI:
    settings = Settings(database_url=database_url, workers=0, _env_file=None,
                        **{"max_body_bytes": BODY_LIMIT, "max_upload_bytes": UPLOAD_LIMIT,
                           **limits})
    return create_app(settings, db=db, executor=NoExecutor())


@pytest.fixture
def limited(database_url: str, db: Database) -> Iterator[TestClient]:
    with TestClient(limited_app(database_url, db), raise_server_exceptions=False) as client:
        yield client


def padded_spec(size: int) -> bytes:
    """A valid job spec of about `size` bytes (JSON whitespace after the object)."""
    body = json.dumps(DIGITS_SPEC).encode()
    return body + b" " * max(0, size - len(body))


def assert_too_large(response: Any) -> None:
    assert response.status_code == 413, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"][0]["path"] == "body"


def npz_bytes(n_rows: int, features: int = 4) -> bytes:
    return dataset_npz(n_rows, 10, features=features, classes=2)


# -- request bodies through the TestClient ------------------------------------------------


def test_a_json_body_just_under_the_limit_is_read(limited: TestClient) -> None:
    response = limited.post("/v1/jobs", content=padded_spec(BODY_LIMIT - 10),
                            headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text


def test_a_declared_content_length_over_the_limit_is_413(limited: TestClient) -> None:
    assert_too_large(limited.post("/v1/jobs", content=padded_spec(BODY_LIMIT + 1),
                                  headers={"content-type": "application/json"}))


def test_a_chunked_json_body_over_the_limit_is_413(limited: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # a generator: no Content-Length, chunked encoding
        body = padded_spec(4 * BODY_LIMIT)
        for start in range(0, len(body), 8 * KiB):
            yield body[start:start + 8 * KiB]

    for path in ("/v1/jobs", "/v1/jobs/0123/predict"):
        response = limited.post(path, content=chunks(),
                                headers={"content-type": "application/json"})
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert_too_large(response)


def test_a_chunked_body_that_is_not_json_is_limited_too(limited: TestClient) -> None:
    response = limited.post("/v1/jobs", content=iter([b"x" * (BODY_LIMIT + 1)]),
                            headers={"content-type": "text/plain"})
    assert_too_large(response)


def test_uploads_have_their_own_larger_limit(limited: TestClient) -> None:
    data = npz_bytes(4_000)  # about 160 KB: over the JSON limit, under the upload limit
    assert BODY_LIMIT < len(data) < UPLOAD_LIMIT
    response = limited.post("/v1/datasets", files={"file": ("big.npz", data)})
    assert response.status_code == 201, response.text
    # The upload limit belongs to uploads: a JSON body that size is still too large.
    assert_too_large(limited.post("/v1/jobs", content=padded_spec(len(data)),
                                  headers={"content-type": "application/json"}))
    too_big = npz_bytes(40_000)
    assert len(too_big) > UPLOAD_LIMIT
    assert_too_large(limited.post("/v1/datasets", files={"file": ("huge.npz", too_big)}))

    def chunks() -> Iterator[bytes]:
        boundary = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.npz\""
        yield boundary + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        for start in range(0, len(too_big), 64 * KiB):
            yield too_big[start:start + 64 * KiB]
        yield b"\r\n--b--\r\n"

    assert_too_large(limited.post("/v1/datasets", content=chunks(),
                                  headers={"content-type": "multipart/form-data; boundary=b"}))


# -- the limit is enforced while reading: the ASGI app itself -----------------------------


def http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("testserver", 80)}


def drive(app: FastAPI, path: str, headers: list[tuple[bytes, bytes]],
          next_chunk: Callable[[], bytes]) -> tuple[int, int]:
    """(status, how many body chunks the app pulled) for an endless chunked body."""
    pulled = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": next_chunk(), "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    asyncio.run(asyncio.wait_for(app(http_scope(path, headers), receive, send), timeout=10))
    return status, pulled


@pytest.mark.parametrize(("path", "content_type", "limit"), [
    ("/v1/jobs", b"application/json", BODY_LIMIT),
    ("/v1/jobs/0123/predict", b"application/json", BODY_LIMIT),
    ("/v1/datasets", b"multipart/form-data; boundary=b", UPLOAD_LIMIT),
])
def test_an_endless_body_is_cut_off_at_the_limit(sqlite_url: str, path: str,
                                                 content_type: bytes, limit: int) -> None:
    db = Database(sqlite_url)
    app = limited_app(sqlite_url, db)
    chunk = 4 * KiB
    first = [b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n"]
    status, pulled = drive(app, path, [(b"content-type", content_type)],
                           lambda: first.pop() if first else b" " * chunk)
    db.dispose()
    assert status == 413
    assert pulled <= limit // chunk + 2, pulled  # it stopped reading right past the limit


def test_a_declared_length_over_the_limit_is_refused_without_reading(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    app = limited_app(sqlite_url, db)

    def unreadable() -> bytes:
        raise AssertionError("the body must not be read")

    for path, length in (("/v1/jobs", BODY_LIMIT + 1), ("/v1/datasets", UPLOAD_LIMIT + 1)):
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(length).encode())]
        assert drive(app, path, headers, unreadable) == (413, 0)
    db.dispose()


# -- and over a real socket ---------------------------------------------------------------


@pytest.fixture
def live_server(sqlite_url: str) -> Iterator[tuple[str, int]]:
    """uvicorn serving the app in a thread, on a socket of its own."""
    db = Database(sqlite_url)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = uvicorn.Server(uvicorn.Config(limited_app(sqlite_url, db), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield listener.getsockname()
    server.should_exit = True
    thread.join(10)
    listener.close()
    db.dispose()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, f"connection closed before a response: {data!r}"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in
               (line.partition(":") for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return int(status_line.split()[1]), headers, body


def test_a_chunked_body_is_cut_off_over_a_real_socket(live_server: tuple[str, int]) -> None:
    total, chunk = 64 * 1024 * KiB, 16 * KiB
    sent = 0
    with socket.create_connection(live_server, timeout=10) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered already
                sock.sendall(b"%x\r\n" % chunk + b" " * chunk + b"\r\n")
                sent += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: it will not read the rest
        status, headers, body = read_response(sock)
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert sent < total // 4, f"sent {sent} bytes before the server answered"


def test_a_declared_length_over_the_limit_is_answered_before_the_body(
        live_server: tuple[str, int]) -> None:
    with socket.create_connection(live_server, timeout=10) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 1000000000\r\n\r\n")
        status, headers, body = read_response(sock)  # no byte of the body was sent
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"]["details"][0]["path"] == "body"


# -- pages ----------------------------------------------------------------------------------


def test_page_limit_is_capped_by_the_server(database_url: str, db: Database,
                                            run_jobs: Callable[[], list[str]]) -> None:
    app = limited_app(database_url, db, page_limit_max=3)
    with TestClient(app, raise_server_exceptions=False) as client:
        ids = [client.post("/v1/jobs", json=spec(iterations=10, eval_every=5)).json()["id"]
               for _ in range(4)]
        for i in range(4):
            client.post("/v1/datasets", files={"file": (f"{i}.npz", npz_bytes(20 + i))})
        run_jobs()
        for path in ("/v1/jobs", "/v1/datasets", f"/v1/jobs/{ids[0]}/metrics/batch_loss"):
            for limit in (4, 10**6, 10**30):
                body = client.get(path, params={"limit": limit}).json()
                items = body.get("data", body.get("points"))
                assert len(items) == 3 and body["next_cursor"], (path, limit, body)
        assert len(client.get("/v1/jobs", params={"limit": 2}).json()["data"]) == 2
        for bad in (0, -1, "ten", ""):
            response = client.get("/v1/jobs", params={"limit": bad})
            assert response.status_code == 422
            assert response.json()["error"]["details"][0]["path"] == "limit"


# -- what a job may ask for -----------------------------------------------------------------


SPEC_LIMITS: list[tuple[dict[str, int], Callable[[dict[str, Any]], Any], str, int]] = [
    ({"max_layers": 3}, lambda s: s["model"]["layers"].insert(
        1, {"type": "relu"}), "model.layers", 4),
    ({"max_parameters": 1_000}, lambda s: None, "model.layers", 64 * 32 + 32 + 32 * 10 + 10),
    ({"max_iterations": 50}, lambda s: s["training"].update(iterations=51),
     "training.iterations", 51),
    ({"max_batch_size": 16}, lambda s: s["training"].update(batch_size=17),
     "training.batch_size", 17),
    ({"max_eval_rows": 10_000}, lambda s: s["training"].update(iterations=60, eval_every=10),
     "training.eval_every", 1797 * 6),
]


@pytest.mark.parametrize(("limits", "change", "path", "received"), SPEC_LIMITS,
                         ids=[next(iter(limits)) for limits, *_ in SPEC_LIMITS])
def test_spec_limits_are_configurable_with_clear_422s(sqlite_url: str, limits: dict[str, int],
                                                      change, path: str,
                                                      received: int) -> None:
    db = Database(sqlite_url)
    body = spec()
    change(body)
    with TestClient(create_app(Settings(database_url=sqlite_url, workers=0, _env_file=None),
                               db=db, executor=NoExecutor())) as default:
        assert default.post("/v1/jobs", json=body).status_code == 201  # fine by default
    with TestClient(limited_app(sqlite_url, db, **limits)) as client:
        response = client.post("/v1/jobs", json=body)
    db.dispose()
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_spec"
    detail = next(d for d in error["details"] if d["path"] == path)
    limit = next(iter(limits.values()))
    assert detail["type"] == "limit" and detail["expected"].startswith("at most")
    assert str(limit) in detail["expected"] and detail["received"] == received


def test_predict_rows_and_dataset_sizes_are_limited(database_url: str, db: Database,
                                                    run_jobs: Callable[[], list[str]]) -> None:
    app = limited_app(database_url, db, max_predict_rows=5, max_dataset_rows=50,
                      max_dataset_features=3)
    with TestClient(app, raise_server_exceptions=False) as client:
        job_id = client.post("/v1/jobs", json=spec(iterations=5, eval_every=5)).json()["id"]
        assert run_jobs() == [job_id]
        rows = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": [[0.0] * 64] * 6})
        assert rows.status_code == 422
        assert rows.json()["error"]["details"][0] == {
            "path": "inputs", "message": "too many rows in one request", "type": "limit",
            "expected": "at most 5 rows", "received": 6}
        too_long = client.post("/v1/datasets", files={"file": ("a.npz", npz_bytes(60))})
        too_wide = client.post("/v1/datasets", files={"file": ("b.npz", npz_bytes(20, 4))})
    for response in (too_long, too_wide):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["type"] == "limit"
