"""One POST: redirects are not followed, the answer is read up to the limit, the whole exchange
is bounded by the timeout even when the receiver trickles bytes."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.webhooks import transport, urls

Respond = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def server() -> Iterator[Callable[[Respond], tuple[str, list[str]]]]:
    """server(respond) -> (url, paths requested so far)."""
    started: list[ThreadingHTTPServer] = []

    def launch(respond: Respond) -> tuple[str, list[str]]:
        paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                paths.append(self.path)
                respond(self)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_port}/hook", paths

    yield launch
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def post(url: str, *, timeout: float = 5.0, limit: int = 1024) -> transport.Answer:
    return transport.post(urls.parse(url), "127.0.0.1", b"{}", {}, timeout=timeout,
                          max_response_bytes=limit)


def test_a_redirect_is_an_answer_not_followed(server) -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(307)
        handler.send_header("Location", "/elsewhere")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    url, paths = server(redirect)
    assert post(url).status_code == 307
    time.sleep(0.2)
    assert paths == ["/hook"]


def test_the_answer_is_read_up_to_the_limit(server) -> None:
    def big(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(10 * 2**20))
        handler.end_headers()
        with contextlib.suppress(OSError):  # the sender hangs up after its limit
            handler.wfile.write(b"x" * (10 * 2**20))

    url, _ = server(big)
    answer = post(url, limit=1000)
    assert answer.status_code == 200 and answer.body == b"x" * 1000


def test_a_trickling_receiver_is_cut_off_at_the_timeout(server) -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        with contextlib.suppress(OSError):  # the sender hangs up at its deadline
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.1)  # each byte well within a per-read timeout

    url, _ = server(trickle)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
        post(url, timeout=1.0)
    assert time.monotonic() - started < 1.8
